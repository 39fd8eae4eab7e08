"""Multi-seed sweeps: a baseline and variants, each trained for several seeds with everything else identical.

Every run is one process of the training script::

    python train_net.py --config-file CFG [--resume] [common overrides] [variant overrides] \\
        train.seed=S train.output_dir=SWEEP/VARIANT/seedS

with ``OMP_NUM_THREADS`` (and ``MKL_NUM_THREADS``) set to the sweep's thread count (results depend on it:
summation order changes the path training takes). A run is done when its ``final_results.json`` exists
(``write_final_results``); a rerun of the sweep skips done runs and restarts unfinished ones with
``--resume`` (which continues from their last checkpoint, or starts them over when there is none).
Overrides may hold ``{seed}`` and ``{sweep}`` (the sweep folder), filled in per run; a run whose overrides
name another run's folder (``train.init_checkpoint={sweep}/stage1/seed{seed}/model_final.pth``: chained
stages, as EFPN's) starts once that run is done. ``SWEEP/sweep.json`` records what the sweep is (variants,
their fully resolved configs' hashes, thread count): a rerun that would mix in runs of a different setting
is refused; new seeds and new variants may be added. Output of each run goes to
``SWEEP/logs/<variant>_seed<S>.log``; ``SWEEP/runs.json`` records each finished run's wall time and the code
it ran (git commit + digest of uncommitted changes).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from net_detr2.checkpoint import atomic_write

from .defaults import FINAL_RESULTS_FILE

__all__ = ["Variant", "Run", "Sweep", "SweepSpecError", "parse_variant", "flat_metrics", "code_version"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
_RESERVED = ("train.seed", "train.output_dir")


class SweepSpecError(ValueError):
    """The sweep's command line contradicts itself or the sweep folder's earlier runs."""


def _check_overrides(owner: str, overrides: Sequence[str]) -> None:
    for o in overrides:
        if "=" not in o:
            raise SweepSpecError(f"{owner}: override {o!r} is not of the form key=value")
        key = o.split("=", 1)[0].lstrip("+").strip()
        if key in _RESERVED:
            raise SweepSpecError(f"{owner}: {key} is set by the sweep for every run; drop {o!r}")


@dataclass(frozen=True)
class Variant:
    """A named config file plus overrides."""

    name: str
    config_file: str
    overrides: tuple[str, ...] = ()

    def __post_init__(self):
        if not _NAME.match(self.name):
            raise SweepSpecError(f"variant name {self.name!r} may only hold letters, digits and _ . + -")
        _check_overrides(f"variant {self.name!r}", self.overrides)


def parse_variant(tokens: Sequence[str], default_config: str | None = None, default_name: str | None = None) -> Variant:
    """``[NAME:]CONFIG [key=value ...]`` or ``NAME: [key=value ...]`` (the ``default_config``).

    Without a NAME the config file's stem (or ``default_name``) names the variant.
    """
    if not tokens:
        raise SweepSpecError("empty variant: expected [NAME:]CONFIG [key=value ...]")
    head, overrides = tokens[0], tuple(tokens[1:])
    name, config = None, head
    if ":" in head:
        prefix, rest = head.split(":", 1)
        if _NAME.match(prefix) and "/" not in prefix:
            name, config = prefix, rest
    if "=" in config and not os.path.exists(config):
        raise SweepSpecError(f"variant {tokens!r}: expected [NAME:]CONFIG first, got the override {config!r}")
    if not config:
        if default_config is None:
            raise SweepSpecError(f"variant {head!r} names no config file")
        config = default_config
    if not os.path.isfile(config):
        raise SweepSpecError(f"variant {head!r}: config file {config!r} does not exist")
    name = name or default_name or Path(config).stem
    return Variant(name, config, overrides)


@dataclass(frozen=True)
class Run:
    variant: Variant
    seed: int
    output_dir: Path

    @property
    def key(self) -> str:
        return f"{self.variant.name}/seed{self.seed}"

    @property
    def results_file(self) -> Path:
        return self.output_dir / FINAL_RESULTS_FILE

    def is_done(self) -> bool:
        return self.results_file.is_file()

    def filled_overrides(self, common_overrides: Sequence[str]) -> list[str]:
        """The common and the variant's overrides, ``{seed}`` and ``{sweep}`` (the sweep folder) filled in."""
        sweep = str(self.output_dir.parent.parent)
        return [
            o.replace("{seed}", str(self.seed)).replace("{sweep}", sweep)
            for o in (*common_overrides, *self.variant.overrides)
        ]

    def overrides(self, common_overrides: Sequence[str]) -> list[str]:
        """Every override of the run: the filled-in ones, then its seed and output folder."""
        return self.filled_overrides(common_overrides) + [
            f"train.seed={self.seed}",
            f"train.output_dir={self.output_dir}",
        ]

    def command(self, python: str, train_script: str, common_overrides: Sequence[str]) -> list[str]:
        cmd = [python, train_script, "--config-file", self.variant.config_file]
        if self.output_dir.exists():
            cmd.append("--resume")
        return cmd + self.overrides(common_overrides)

    def depends_on(self, other: Run, common_overrides: Sequence[str]) -> bool:
        """Whether an override names a file of ``other``'s folder (e.g. its ``model_final.pth`` as this run's
        ``train.init_checkpoint``): then this run waits for that one."""
        if other.output_dir == self.output_dir:
            return False
        folder = str(other.output_dir)
        return any(folder + os.sep in o or o.endswith("=" + folder) for o in self.filled_overrides(common_overrides))

    def results(self) -> dict:
        with open(self.results_file, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or "results" not in data:
            raise ValueError(f"{self.results_file}: expected {{'results': ...}}, got {str(data)[:200]}")
        return data["results"]


def code_version(repo: Path) -> str:
    """The code a run starts with: the git commit of ``repo``, plus a digest of uncommitted changes to tracked
    files ("unknown" outside git). Runs of one sweep made with different code are flagged in its report."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True)
        diff = subprocess.run(["git", "diff", "HEAD"], cwd=repo, capture_output=True)
    except OSError:
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    dirty = f"+{hashlib.sha256(diff.stdout).hexdigest()[:8]}" if diff.stdout.strip() else ""
    return rev.stdout.strip() + dirty


def flat_metrics(results: dict) -> dict[str, float]:
    """``{"bbox": {"AP": 1.0}}`` -> ``{"AP": 1.0}``; with several tasks the keys keep their task (``bbox/AP``)."""
    flat: dict[str, float] = {}

    def walk(prefix: str, node):
        for k, v in node.items():
            key = f"{prefix}/{k}" if prefix else str(k)
            if isinstance(v, dict):
                walk(key, v)
            else:
                flat[key] = float(v) if v is not None else float("nan")

    walk("", results)
    tasks = {k.split("/", 1)[0] for k in flat if "/" in k}
    if len(tasks) == 1 and all("/" in k for k in flat):
        flat = {k.split("/", 1)[1]: v for k, v in flat.items()}
    return flat


@dataclass
class Sweep:
    """The runs of ``variants`` (``variants[0]`` is the baseline) x ``seeds`` under ``output_dir``.

    ``launcher``: a command prefix for every run (e.g. a queue that waits for a free machine slot); it does
    not change what a run computes, so it is not part of the sweep's recorded setting.
    """

    output_dir: Path
    variants: list[Variant]
    seeds: list[int]
    common_overrides: tuple[str, ...] = ()
    threads: int = 1
    train_script: str = "train_net.py"
    python: str = sys.executable
    launcher: tuple[str, ...] = ()
    config_digests: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.output_dir = Path(self.output_dir).absolute()
        names = [v.name for v in self.variants]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SweepSpecError(f"variant names must be unique; repeated: {dup}")
        if len(set(self.seeds)) != len(self.seeds) or any(int(s) < 0 for s in self.seeds):
            raise SweepSpecError(f"seeds must be distinct non-negative integers, got {self.seeds}")
        _check_overrides("--common", self.common_overrides)
        if int(self.threads) < 1:
            raise SweepSpecError(f"threads must be >= 1, got {self.threads}")

    @property
    def baseline(self) -> Variant:
        return self.variants[0]

    @property
    def spec_file(self) -> Path:
        return self.output_dir / "sweep.json"

    def runs(self) -> list[Run]:
        """Seed-major order, so that an interrupted sweep has complete seed pairs first."""
        return [Run(v, int(s), self.output_dir / v.name / f"seed{int(s)}") for s in self.seeds for v in self.variants]

    # -- what the sweep is, and whether a rerun may continue it ------------------------------------
    def resolve_configs(self) -> None:
        """Load every variant's config with its overrides (errors name the variant), and keep a digest of
        the resolved config (seed and output folder left out) to recognise a changed setting on rerun."""
        from net_detr2.config import LazyConfig

        for v in self.variants:
            try:
                cfg = LazyConfig.load(v.config_file)
                LazyConfig.apply_overrides(
                    cfg, [*self.common_overrides, *v.overrides, "train.seed=0", "train.output_dir=SWEEP"]
                )
            except Exception as e:
                raise SweepSpecError(f"variant {v.name!r} ({v.config_file}): {type(e).__name__}: {e}") from e
            self.config_digests[v.name] = hashlib.sha256(LazyConfig.to_py(cfg).encode("utf-8")).hexdigest()

    def _spec(self) -> dict:
        return {
            "variants": [dict(asdict(v), overrides=list(v.overrides)) for v in self.variants],
            "baseline": self.baseline.name,
            "seeds": list(self.seeds),
            "common_overrides": list(self.common_overrides),
            "threads": int(self.threads),
            "config_digests": dict(self.config_digests),
        }

    def check_and_save_spec(self) -> None:
        """Refuse to continue a sweep folder made with another setting; record this one (adding seeds and
        variants is allowed)."""
        new = self._spec()
        merged = dict(new)
        if self.spec_file.is_file():
            old = json.loads(self.spec_file.read_text())
            where = f"sweep folder {self.output_dir}"
            problems = []
            if old.get("baseline") != new["baseline"]:
                problems.append(f"baseline was {old.get('baseline')!r}, now {new['baseline']!r}")
            if old.get("threads") != new["threads"]:
                problems.append(f"threads (OMP_NUM_THREADS) were {old.get('threads')}, now {new['threads']}")
            if old.get("common_overrides") != new["common_overrides"]:
                problems.append(f"common overrides were {old.get('common_overrides')}, now {new['common_overrides']}")
            old_variants = {v["name"]: v for v in old.get("variants", [])}
            for v in new["variants"]:
                o = old_variants.get(v["name"])
                if o is None:
                    continue
                if (o["config_file"], o["overrides"]) != (v["config_file"], v["overrides"]):
                    problems.append(
                        f"variant {v['name']!r} was {o['config_file']} {o['overrides']}, "
                        f"now {v['config_file']} {v['overrides']}"
                    )
                elif (
                    None
                    not in (
                        a := old.get("config_digests", {}).get(v["name"]),
                        b := new["config_digests"].get(v["name"]),
                    )
                    and a != b
                ):
                    problems.append(
                        f"variant {v['name']!r}: its resolved config changed since its runs were made "
                        f"(an edited config file or an imported one)"
                    )
            if problems:
                raise SweepSpecError(
                    f"{where} holds runs made with another setting: "
                    + "; ".join(problems)
                    + ". Use a new --output-dir, or restore the earlier setting."
                )
            merged["variants"] = new["variants"] + [
                v for n, v in old_variants.items() if n not in {x["name"] for x in new["variants"]}
            ]
            merged["seeds"] = sorted(set(old.get("seeds", [])) | set(new["seeds"]))
            merged["config_digests"] = {**old.get("config_digests", {}), **new["config_digests"]}
        self.output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.spec_file, lambda f: json.dump(merged, f, indent=1), mode="w")

    # -- running --------------------------------------------------------------------------------
    def run(self, jobs: int = 1, log: Callable[[str], None] = print, poll_s: float = 0.5) -> list[Run]:
        """Run every run that is not done, ``jobs`` at a time; returns the runs that failed.

        Interrupting the sweep (Ctrl-C, SIGTERM) stops the runs it started; rerunning continues.
        """
        if jobs < 1:
            raise SweepSpecError(f"jobs must be >= 1, got {jobs}")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        # One sweep at a time per folder. The runs inherit the locked descriptor, so the lock also holds
        # while runs of a killed sweep are still going (a rerun would otherwise start them a second time).
        lock = open(self.output_dir / "sweep.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise SweepSpecError(
                f"another sweep, or runs it started, are still running in {self.output_dir} (sweep.lock is held)"
            ) from None
        try:
            return self._run(jobs, log, poll_s, lock.fileno())
        finally:
            lock.close()

    def _run(self, jobs: int, log: Callable[[str], None], poll_s: float, lock_fd: int) -> list[Run]:
        runs = self.runs()
        todo = [r for r in runs if not r.is_done()]
        for r in runs:
            if r.is_done():
                log(f"[sweep] {r.key}: done, skipped")
        log(f"[sweep] {len(todo)} of {len(runs)} runs to do, {jobs} at a time, OMP_NUM_THREADS={self.threads}")
        (self.output_dir / "logs").mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        running: list[tuple[Run, subprocess.Popen, float, object, str]] = []
        failed: list[Run] = []
        records = self.run_records()

        def on_sigterm(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        previous = signal.signal(signal.SIGTERM, on_sigterm)
        try:
            pending = list(todo)
            while pending or running:
                while len(running) < jobs:
                    r = self._next_ready(pending, running, failed, log)
                    if r is None:
                        break
                    cmd = [*self.launcher, *r.command(self.python, self.train_script, self.common_overrides)]
                    log_path = self.output_dir / "logs" / f"{r.variant.name}_seed{r.seed}.log"
                    f = open(log_path, "ab")
                    f.write(f"\n[sweep] {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
                    f.flush()
                    log(f"[sweep] {r.key}: start{' (resuming)' if '--resume' in cmd else ''}: {' '.join(cmd)}")
                    code = code_version(Path(self.train_script).absolute().parent)
                    p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, pass_fds=(lock_fd,))
                    running.append((r, p, time.perf_counter(), f, code))
                time.sleep(poll_s)
                still = []
                for r, p, t0, f, code in running:
                    rc = p.poll()
                    if rc is None:
                        still.append((r, p, t0, f, code))
                        continue
                    f.close()
                    wall = time.perf_counter() - t0
                    if rc == 0 and r.is_done():
                        records[r.key] = {"wall_s": round(wall, 1), "code": code, "finished": time.strftime("%F %T")}
                        atomic_write(self.records_file, lambda f: json.dump(records, f, indent=1), mode="w")
                        log(f"[sweep] {r.key}: finished in {wall:.0f}s")
                    else:
                        why = f"exit code {rc}" if rc != 0 else f"exited 0 without {FINAL_RESULTS_FILE}"
                        log(f"[sweep] {r.key}: FAILED ({why}); see {self.output_dir / 'logs'}")
                        failed.append(r)
                running = still
        finally:
            signal.signal(signal.SIGTERM, previous)
            for _r, p, _t, _f, _c in running:
                if p.poll() is None:
                    p.terminate()
            for r, p, _, f, _c in running:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                f.close()
                log(f"[sweep] {r.key}: stopped (unfinished; a rerun resumes it)")
        return failed

    def _next_ready(self, pending: list[Run], running: list, failed: list[Run], log) -> Run | None:
        """Take the first pending run whose prerequisite runs are done; drop those whose prerequisites failed."""
        for r in list(pending):
            deps = [q for q in self.runs() if r.depends_on(q, self.common_overrides)]
            if any(q in failed for q in deps):
                pending.remove(r)
                failed.append(r)
                log(f"[sweep] {r.key}: not started, a run it needs failed ({', '.join(q.key for q in deps)})")
                continue
            if all(q.is_done() for q in deps):
                pending.remove(r)
                return r
            if not any(q in pending or q in (x[0] for x in running) for q in deps if not q.is_done()):
                pending.remove(r)
                failed.append(r)
                needs = ", ".join(q.key for q in deps)
                log(f"[sweep] {r.key}: not started, it needs {needs}, which this sweep does not run")
        return None

    @property
    def records_file(self) -> Path:
        return self.output_dir / "runs.json"

    def run_records(self) -> dict[str, dict]:
        """``{"<variant>/seed<S>": {"wall_s", "code", "finished"}}`` of the runs this sweep finished (``wall_s``
        from launch to exit, so it includes any wait in the launcher's queue)."""
        return json.loads(self.records_file.read_text()) if self.records_file.is_file() else {}

    def collect(self) -> dict[str, dict[int, dict[str, float]]]:
        """Final metrics of the finished runs: ``{variant: {seed: {metric: value}}}``."""
        out: dict[str, dict[int, dict[str, float]]] = {v.name: {} for v in self.variants}
        for r in self.runs():
            if r.is_done():
                out[r.variant.name][r.seed] = flat_metrics(r.results())
        return out
