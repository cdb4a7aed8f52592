"""Cases for `distill_l2s.text` and `distill_l2s.data` that are not natural notebook examples: properties over many
inputs, corrupt audio, spawned DataLoader workers, errors raised inside workers."""
import random
import unicodedata

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from distill_l2s.data import (CV_COLUMNS, BadDataError, Collator, SpeechDataset, length_grouped_sampler, read_split,
                              write_cv_fixture)
from distill_l2s.text import build_vocab, cer, labels_to_text, make_processor, normalize, wer

# A pool of characters of every category normalize treats differently, from many scripts.
POOL = ("aZéÉßẞİIıǅŉ ΣσςΛόΆ ёЁ'’ʼ`´·-—_.,;:!?¿¡«»\"()[]|/\\0123456789٣२௫๓ \t\n\u00a0\u202f"
        "हिन्दीक़ தமிழ் ภาษาไทยน้ำ ๆฯ العَرَبِيَّةـ می\u200cخواهم ক্\u200dষ 한국어 ﾃｽﾄ ＡＢ ﬁ ½ ² ① "
        "\u00ad\u200b\u200e\ufeff\u2060 \u0301\u0308 Ինչո՞ւ ג׳ ₂ € $ ™ 😀")


def random_texts(n=3000, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice(POOL) for _ in range(rng.randint(0, 40))) for _ in range(n)]


@pytest.mark.parametrize("mode", ["default", "paper"])
@pytest.mark.parametrize("lang", [None, "tr"])
def test_normalize_is_stable_and_clean(mode, lang):
    for raw in random_texts():
        out = normalize(raw, lang, mode)
        assert normalize(out, lang, mode) == out, (raw, out)
        assert out == out.strip() and "  " not in out
        if mode == "paper": assert out == unicodedata.normalize("NFKC", out)
        for c in out:
            cat = unicodedata.category(c)
            assert c == " " or cat[0] in "LM" or c in "'·\u05f3\u05f4\u200c\u200d", (raw, out, c, cat)
            if mode == "paper": assert c == " " or cat[0] == "L" or c == "\u0307", (raw, out, c)


def test_normalize_keeps_every_letter():
    "Default mode deletes no letter (only the tatweel, and ʼ becomes the apostrophe)."
    for raw in random_texts(500, seed=1):
        pre = unicodedata.normalize("NFKC", raw.replace("ʼ", "'")).replace("ʼ", "'").replace("\u0e4d\u0e32", "\u0e33")
        letters = lambda s: [c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c)[0] == "L"]
        assert letters(normalize(raw)) == [c for c in letters(pre.lower()) if c != "\u0640"], raw


def test_vocab_and_processor_round_trip_random_text(tmp_path):
    texts = [normalize(t) for t in random_texts(800, seed=2)]
    vocab = build_vocab(texts, coverage=1.0)
    processor = make_processor(vocab, save_dir=tmp_path)
    tok = processor.tokenizer
    for t in texts:
        ids = tok(t).input_ids
        assert len(ids) == len(t) and tok.unk_token_id not in ids
        assert labels_to_text(tok, ids) == t
    test_vocab = build_vocab(texts, coverage=0.99)
    assert len(test_vocab) < len(vocab) and list(test_vocab)[:3] == ["[PAD]", "[UNK]", "|"]


def test_error_rates_agree_with_hand_counts():
    assert cer(["abc"], ["abd"]) == pytest.approx(1 / 3)
    assert cer(["abc", "de"], ["", "de"]) == pytest.approx(3 / 5)               # deletions of a whole line
    assert wer(["a b c d"], ["a x c"]) == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="undefined"): wer([""], ["x"])


def rows(n, **kw):
    return [dict(sentence=f"utterance number {'abcdefghij'[i % 10]} for testing", duration=1.5 + 0.25 * i, **kw)
            for i in range(n)]


@pytest.fixture(scope="module")
def cv(tmp_path_factory):
    return write_cv_fixture(tmp_path_factory.mktemp("cv"), {"train": rows(10), "dev": rows(3)}, lang="de")


def test_rows_are_all_accounted_for(cv):
    records, skips = read_split(cv, "train")
    assert skips.rows == skips.kept + skips.skipped == 10 == len(records)
    assert all(r.locale == "de" and r.path.is_file() and r.duration > 1 for r in records)
    assert set(CV_COLUMNS) - {"path", "sentence", "accents"} <= set(records[0])


def test_decode_check_finds_corrupt_stream(tmp_path):
    "A clip whose header is fine but whose stream is broken passes the header check and fails the decode check."
    wave = np.random.default_rng(0).standard_normal(48000 * 5).astype(np.float32) * 0.1
    lang_dir = write_cv_fixture(tmp_path, {"train": [dict(sentence="a good clip"), dict(sentence="a broken clip", audio=wave)]})
    clip = lang_dir / "clips" / "common_voice_en_00000002.mp3"
    data = bytearray(clip.read_bytes())
    data[2000:6000] = np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    clip.write_bytes(bytes(data))
    sf.info(str(clip))                                            # the header still opens
    records, skips = read_split(lang_dir, "train", check_audio=True)
    assert len(records) == 2 and skips.skipped == 0
    records, skips = read_split(lang_dir, "train", check_audio="decode")
    assert [r.text for r in records] == ["a good clip"] and skips.reasons == {"undecodable clip": 1}


def test_truncated_clip_too_short_at_decode_time(tmp_path):
    "clip_durations.tsv says 3 s but the file decodes to a fraction: the dataset says so instead of a CTC inf loss."
    lang_dir = write_cv_fixture(tmp_path, {"train": [dict(sentence="x" * 20 + " a long label for a short clip " * 2, duration=3.0)]})
    clip = next((lang_dir / "clips").iterdir())
    clip.write_bytes(clip.read_bytes()[:1500])
    records, _ = read_split(lang_dir, "train")
    ds = SpeechDataset(records, make_processor(build_vocab(r.text for r in records)))
    with pytest.raises(RuntimeError, match="too short for CTC"): ds[0]


def test_bad_clip_durations_file(cv, tmp_path):
    lang_dir = write_cv_fixture(tmp_path, {"train": rows(2)})
    (lang_dir / "clip_durations.tsv").write_text("name\tms\nx\t1\n")
    with pytest.raises(ValueError, match=r"clip_durations.tsv: expected the columns 'clip' and 'duration\[ms\]'"):
        read_split(lang_dir, "train")


def test_label_length_limit_and_missing_durations(tmp_path):
    lang_dir = write_cv_fixture(tmp_path, {"train": rows(4) + [dict(sentence="short", duration=1.0)]}, clip_durations=False)
    records, skips = read_split(lang_dir, "train", max_label_length=10)
    assert [r.text for r in records] == ["short"] and skips.reasons == {"label too long": 4}
    lang_dir = write_cv_fixture(tmp_path / "b", {"train": rows(4)}, clip_durations=False)
    records, skips = read_split(lang_dir, "train", max_duration=None)
    assert [round(r.duration, 2) for r in records] == [1.5, 1.75, 2.0, 2.25]       # from the MP3 headers


def test_wav_and_given_waveforms_round_trip(tmp_path):
    wave = np.sin(2 * np.pi * 300 * np.arange(32000) / 16000).astype(np.float32) * 0.3
    lang_dir = write_cv_fixture(tmp_path, {"train": [dict(sentence="a wav clip", audio=wave, path="a.wav")]},
                                sampling_rate=16000)
    records, _ = read_split(lang_dir, "train")
    ds = SpeechDataset(records, make_processor(build_vocab(["a wav clip"])))
    item = ds[0]
    assert len(item["input_values"]) == 32000 and records[0].duration == 2.0
    expected = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
    np.testing.assert_allclose(item["input_values"], expected, atol=1e-4)


def _loader(ds, processor, **kw):
    return DataLoader(ds, batch_size=3, sampler=length_grouped_sampler(ds.durations, 3, seed=1),
                      collate_fn=Collator(processor), **kw)


def test_spawned_workers_give_the_same_batches(cv):
    "Everything a worker needs pickles: spawned workers (the macOS and Windows default) agree with the main process."
    records, _ = read_split(cv, "train")
    processor = make_processor(build_vocab(r.text for r in records))
    ds = SpeechDataset(records, processor)
    main = list(_loader(ds, processor))
    spawned = list(_loader(ds, processor, num_workers=2, multiprocessing_context="spawn"))
    assert len(main) == len(spawned) == 4
    for a, b in zip(main, spawned):
        assert a["texts"] == b["texts"]
        for k in ("input_values", "attention_mask", "labels"): assert torch.equal(a[k], b[k])


def test_broken_clip_in_a_worker_names_the_clip(tmp_path):
    "With on_error='raise' a broken clip stops the DataLoader with our message naming it, not a torch internal."
    lang_dir = write_cv_fixture(tmp_path, {"train": rows(3) + [dict(sentence="broken", audio="junk")]})
    records, _ = read_split(lang_dir, "train")
    processor = make_processor(build_vocab(r.text for r in records))
    loader = _loader(SpeechDataset(records, processor, on_error="raise"), processor, num_workers=2)
    with pytest.raises(RuntimeError, match=r"common_voice_en_00000004.mp3: cannot be decoded as audio"):
        list(loader)


# spawn (macOS' and Windows' default) starts each worker afresh: 4 imports of the library, about half a minute
@pytest.mark.parametrize("context", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_clips_broken_in_workers_are_counted_once_in_the_main_process(tmp_path, context):
    "Workers hold copies of the dataset: the failures travel back in the batch and are counted once per clip."
    lang_dir = write_cv_fixture(tmp_path, {"train": rows(6) + [dict(sentence="broken", audio="junk"),
                                                               dict(sentence="broken too", audio="junk")]})
    records, skips = read_split(lang_dir, "train")
    processor = make_processor(build_vocab(r.text for r in records))
    ds = SpeechDataset(records, processor, summary=skips, max_bad_share=0.5)
    loader = _loader(ds, processor, num_workers=2, multiprocessing_context=context)
    for epoch in range(2):                                   # every clip is met in both epochs, by fresh workers
        texts = []
        for b in loader:
            ds.note(b.get("skipped"))
            texts += b["texts"]
        assert len(texts) == 8 and "broken" not in texts and "broken too" not in texts
    assert sorted(ds.failures) == sorted(str(r.path) for r in records[6:])  # noted here, from the batches
    assert skips.reasons == {"undecodable clip": 2} and (skips.rows, skips.kept, skips.bad) == (8, 6, 2)
    ds.max_bad_share = 0.2
    with pytest.raises(BadDataError, match=r"2 of 8 rows \(25.0%\)"): ds.note([])


def test_sampler_without_seed_follows_torch_seed():
    "seed=None draws from torch's global generator, so `torch.manual_seed` (as the Trainer sets it) fixes the order."
    durs = [float(d) for d in np.random.default_rng(5).uniform(1, 10, 101)]
    torch.manual_seed(0); a = list(length_grouped_sampler(durs, 8, seed=None))
    torch.manual_seed(0); b = list(length_grouped_sampler(durs, 8, seed=None))
    assert a == b and sorted(a) == list(range(101))


def test_unusual_characters_in_sentences_stay_in_their_row(tmp_path):
    "Quotes, U+2028, U+0085 and form feeds are sentence text, not row or field breaks."
    sentences = ['"Open quote only', "line\u2028separator and next\u0085line", "form\x0cfeed", 'a ""double"" quote"']
    lang_dir = write_cv_fixture(tmp_path, {"train": [dict(sentence=s) for s in sentences]})
    records, skips = read_split(lang_dir, "train")
    assert [r.sentence for r in records] == sentences and skips.rows == 4
    assert [r.text for r in records] == ["open quote only", "line separator and next line", "form feed", "a double quote"]
