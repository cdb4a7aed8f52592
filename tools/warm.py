"""Run many short Python jobs, each in a fresh process, without paying the heavy imports each time.

Every notebook the tests or the docs build run needs torch and transformers' models, and importing them costs
about 10 s of CPU on the 2-core development machine, more than many notebooks' own cells. A `WarmRunner` starts
one server process that imports those modules once (`PRELOAD`) and then forks a child for each job: the child is
a copy of the server as it was right after the imports (no job sees another job's state), runs the job as
`python script args...` or `python -c code args...` would, with its own working folder, and exits. The server is
single-threaded, so forking it is safe; a module that fails to import at startup is skipped there, and a job that
needs it meets the error itself.

    with WarmRunner(env=env) as w: r = w.run(["-c", "print(1)"], cwd=folder)   # r: a subprocess.CompletedProcess

The server serves one job at a time; run one `WarmRunner` per job you want running at once.
"""
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

PRELOAD = ("numpy", "torch", "transformers", "distill_l2s", "distill_l2s.train", "matplotlib.pyplot",
           "IPython", "execnb.shell", "nbdev.test")


def _child(job: dict) -> int:
    "In the forked child: become `python *argv` run in `job['cwd']`, output to the job's files; the exit status."
    out, err = (os.open(job[k], os.O_WRONLY | os.O_CREAT | os.O_TRUNC) for k in ("stdout", "stderr"))
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, to in ((null, 0), (out, 1), (err, 2)): os.dup2(fd, to)
    sys.stdin = open(0, closefd=False)
    os.chdir(job["cwd"])
    try:
        import numpy
        numpy.random.seed()  # a fresh process draws its own seed; the fork would copy the server's
    except ImportError: pass
    argv = job["argv"]
    try:
        if argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            sys.path.insert(0, "")
            import types
            main = sys.modules["__main__"] = types.ModuleType("__main__")  # as `python -c` has it: no file
            exec(compile(argv[1], "<string>", "exec"), main.__dict__)
        else:
            import runpy
            sys.argv = list(argv)
            sys.path.insert(0, str(Path(argv[0]).resolve().parent))
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else (print(e.code, file=sys.stderr), 1)[1])
    except BaseException:
        traceback.print_exc()
        code = 1
    for f in (sys.stdout, sys.stderr):
        try: f.flush()
        except Exception: pass
    return code


def serve(preload: list[str]):
    "The server: import `preload`, then for each job line on stdin fork a child, wait for it and answer its exit status."
    for name in preload:
        try: __import__(name)
        except Exception: pass  # the job that needs it will meet the error and report it
    proto_in, proto_out = sys.stdin.buffer, os.fdopen(os.dup(1), "w")
    proto_out.write("ready\n"); proto_out.flush()
    for line in proto_in:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try: code = _child(job)
            finally: os._exit(code & 0xFF if code >= 0 else 1)
        _, status = os.waitpid(pid, 0)
        proto_out.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n"); proto_out.flush()


class WarmRunner:
    "A server process that forks a fresh, pre-imported child for each job (see the module's docstring)."
    def __init__(self, env: dict|None = None, preload=PRELOAD):
        self.env, self.preload, self.proc = env, list(preload), None

    def start(self):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, __file__, "--serve", ",".join(self.preload)], env=self.env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
            if self.proc.stdout.readline().strip() != "ready": raise RuntimeError(f"the warm server did not start: {self._died()}")
        return self

    def _died(self) -> str:
        self.proc.kill(); self.proc.wait()
        return f"exit status {self.proc.returncode}"

    def run(self, argv: list[str], cwd=None, timeout: float|None = None) -> subprocess.CompletedProcess:
        """Run `python *argv` in `cwd` (default: here) in a fresh child; its exit status and output, as `subprocess.run`
        gives them. Past `timeout` seconds the server and the job are killed and `subprocess.TimeoutExpired` is raised.
        Where processes cannot fork (Windows), a plain subprocess."""
        if not hasattr(os, "fork"):
            return subprocess.run([sys.executable, *map(str, argv)], env=self.env, cwd=cwd, capture_output=True, text=True,
                                  timeout=timeout)
        self.start()
        with tempfile.TemporaryDirectory(prefix="warm-") as d:
            job = {"argv": [str(a) for a in argv], "cwd": str(Path(cwd or os.getcwd()).resolve()),
                   "stdout": os.path.join(d, "out"), "stderr": os.path.join(d, "err")}
            read = lambda k: Path(job[k]).read_text(errors="replace") if Path(job[k]).exists() else ""
            self.proc.stdin.write(json.dumps(job) + "\n"); self.proc.stdin.flush()
            if not select.select([self.proc.stdout], [], [], timeout)[0]:
                os.killpg(self.proc.pid, signal.SIGKILL); self.proc.wait(); self.proc = None
                raise subprocess.TimeoutExpired([sys.executable, *job["argv"]], timeout, read("stdout"), read("stderr"))
            answer = self.proc.stdout.readline()
            if not answer: raise RuntimeError(f"the warm server died while running {argv[:2]}: {self._died()}")
            return subprocess.CompletedProcess([sys.executable, *job["argv"]], json.loads(answer)["returncode"],
                                               read("stdout"), read("stderr"))

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try: self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        self.proc = None

    def __enter__(self): return self.start()
    def __exit__(self, *exc): self.close()


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    serve([m for m in sys.argv[2].split(",") if m] if len(sys.argv) > 2 else [])
