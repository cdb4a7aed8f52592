__version__ = "0.0.1"

from . import whisper as _whisper  # registers the Whisper CTC student with transformers' Auto classes
