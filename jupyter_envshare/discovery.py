"""Shared environments on disk -> ``SharedEnv`` records, kept fresh by a stat-keyed cache.

Discovery never spawns a process. An unchanged installation costs a few ``stat`` calls per
environment: the resolved roots and their mtimes decide which environments exist, and each
environment's ``conda-meta``, kernels directory and ``kernel.json`` files decide whether it must be
read again. Anything broken becomes a record with a reason instead of an exception.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .naming import clean_kernel_name, display_name, kernel_name, resolve_collisions

log = logging.getLogger("jupyter_envshare.discovery")

SIDECAR_NAME = "envshare"  # conda-meta/envshare: no .json suffix, conda parses every *.json there

StatKey = tuple[int, ...]


@dataclass(frozen=True)
class DiscoveryConfig:
    """What discovery depends on; built from ``EnvShare`` settings (or directly in tests)."""

    env_roots: tuple[str, ...] = ()
    env_prefixes: tuple[str, ...] = ()
    catalog: str | None = None
    allowed_envs: tuple[str, ...] = ("*",)
    denied_envs: tuple[str, ...] = ()
    name_format: str = "conda-env-{env}-{kernel}"
    display_name_format: str = "{display_name} [shared: {env}]"
    revalidate_interval: float = 0.0
    metadata_interval: float = 5.0
    user_groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Problem:
    """Something wrong with an environment or root, as a person should read it."""

    kind: str
    message: str
    severity: str = "error"  # "error": the environment cannot be used; "warning": it can


@dataclass(frozen=True)
class KernelEntry:
    """One kernel of a shared environment, with its stable Jupyter name."""

    name: str
    raw_name: str
    env: str
    resource_dir: str
    display_name: str
    language: str
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class SharedEnv:
    """A shared environment as discovery sees it: usable, denied or broken (with reasons)."""

    name: str
    path: str
    prefix: str
    source: str
    kernels: tuple[KernelEntry, ...] = ()
    problems: tuple[Problem, ...] = ()
    allowed: bool = True
    read_only: bool = True
    alias_of: str | None = None
    sidecar: Mapping[str, Any] | None = None
    catalog: Mapping[str, Any] | None = None
    has_history: bool = False

    @property
    def usable(self) -> bool:
        """Whether kernels can be launched from it."""
        return self.allowed and not any(p.severity == "error" for p in self.problems)


@dataclass(frozen=True)
class Snapshot:
    """One consistent view of every configured environment and the kernels it offers."""

    envs: tuple[SharedEnv, ...]
    kernels: Mapping[str, KernelEntry]
    problems: tuple[Problem, ...] = ()
    generation: int = 0
    _by_name: Mapping[str, SharedEnv] = field(default_factory=dict, repr=False, compare=False)

    def env(self, name: str) -> SharedEnv | None:
        """The environment called ``name``, whatever its state."""
        return self._by_name.get(name)


@dataclass(frozen=True)
class _Candidate:
    wanted_name: str
    path: str  # as configured (through `current`): what admins and users recognise
    location: str  # where it is read from now: the resolved root's child, or a symlink's target
    source: str
    alias_of: str | None
    catalog: Mapping[str, Any] | None
    problem: Problem | None = None  # decided before reading (dangling symlink, missing prefix)


@dataclass(frozen=True)
class _RawKernel:
    raw_name: str
    resource_dir: str
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class _Scan:
    """What one environment held when last read, and the stat keys that say it is still so.

    ``watch`` (the kernels directory and each kernel.json) is checked at every listing: it decides
    which kernels exist and what they run. ``meta_watch`` (conda-meta) only decides the record's
    health and provenance fields and is checked every ``metadata_interval`` seconds.
    """

    serial: int
    watch: tuple[tuple[str, StatKey], ...]
    meta_watch: tuple[tuple[str, StatKey], ...]
    is_env: bool
    prefix: str
    kernels: tuple[_RawKernel, ...]
    problems: tuple[Problem, ...]
    read_only: bool
    sidecar: Mapping[str, Any] | None
    has_history: bool


def stat_key(path: str) -> StatKey:
    """Identity and change marker of a path, or a negative errno when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError as err:
        return (-(err.errno or 1),)
    # ctime too: a chmod (records made readable, a kernel.json made private) changes only it.
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def _unchanged(watch: tuple[tuple[str, StatKey], ...]) -> bool:
    # The hot loop of a warm listing: one stat per watched path, nothing else.
    stat = os.stat
    for path, key in watch:
        try:
            st = stat(path)
        except OSError as err:
            if key != (-(err.errno or 1),):
                return False
            continue
        if key != (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size):
            return False
    return True


class EnvDiscovery:
    """The single discovery engine behind the kernelspec manager, provisioner, CLI and API."""

    def __init__(self, config: DiscoveryConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._serials = itertools.count(1)
        self._roots: dict[str, tuple[str, StatKey, tuple[_Candidate, ...]]] = {}
        self._scans: dict[str, _Scan] = {}
        self._catalog_key: StatKey | None = None
        self._catalog: tuple[tuple[Mapping[str, Any], ...], tuple[Problem, ...]] = ((), ())
        self._fingerprint: tuple[Any, ...] | None = None
        self._snapshot = Snapshot(envs=(), kernels={})
        self._checked_at = float("-inf")
        self._meta_checked_at = float("-inf")
        self._logged: set[tuple[str, str]] = set()

    # -- public ---------------------------------------------------------------------------------

    def snapshot(self, *, force: bool = False, max_age: float = 0.0) -> Snapshot:
        """The current view, revalidated against the disk unless within ``revalidate_interval`` (or
        ``max_age`` seconds, when the caller can do with a view that old)."""
        with self._lock:
            now = time.monotonic()
            fresh_for = max(self.config.revalidate_interval, max_age)
            if not force and now - self._checked_at < fresh_for:
                return self._snapshot
            self._refresh()
            self._checked_at = now
            return self._snapshot

    def resolve(
        self, env: str, raw_kernel: str | None = None, snapshot: Snapshot | None = None
    ) -> tuple[SharedEnv, KernelEntry]:
        """The usable environment ``env`` and its kernel ``raw_kernel``, freshly checked.

        Raises ``EnvUnavailable`` with a message for the notebook when it is gone, denied or broken.
        """
        snap = snapshot if snapshot is not None else self.snapshot(force=True)
        record = snap.env(env)
        if record is None:
            raise EnvUnavailable(env, f"The shared environment '{env}' does not exist (any more).")
        if not record.allowed:
            reasons = "; ".join(p.message for p in record.problems if p.kind == "not-allowed")
            raise EnvUnavailable(env, f"The shared environment '{env}' is not allowed: {reasons}")
        if not record.usable:
            reasons = "; ".join(p.message for p in record.problems if p.severity == "error")
            raise EnvUnavailable(env, f"The shared environment '{env}' is broken: {reasons}")
        for entry in record.kernels:
            if raw_kernel is None or entry.raw_name == raw_kernel:
                return record, entry
        raise EnvUnavailable(env, f"The shared environment '{env}' has no kernel '{raw_kernel}' (any more).")

    # -- refresh --------------------------------------------------------------------------------

    def _refresh(self) -> None:
        root_problems: list[Problem] = []
        catalog_entries, catalog_problems = self._load_catalog()
        root_problems.extend(catalog_problems)
        candidates: list[_Candidate] = []
        for root in self.config.env_roots:
            found, problem = self._root_candidates(root)
            candidates.extend(found)
            if problem is not None:
                root_problems.append(problem)
        for prefix in self.config.env_prefixes:
            candidates.append(self._explicit_candidate(prefix, "env_prefixes", None))
        for entry in catalog_entries:
            if entry.get("prefix"):
                source = self.config.catalog or "catalog"
                candidates.append(self._explicit_candidate(str(entry["prefix"]), source, entry))

        now = time.monotonic()
        check_meta = now - self._meta_checked_at >= self.config.metadata_interval
        if check_meta:
            self._meta_checked_at = now
        scans = [self._scan(c, check_meta) for c in candidates]
        fingerprint = (
            tuple(s.serial for s in scans),
            tuple((c.path, c.location) for c in candidates),
            self._catalog_key,
            tuple(root_problems),
        )
        if fingerprint == self._fingerprint:
            return
        self._fingerprint = fingerprint
        self._snapshot = self._assemble(candidates, scans, root_problems)
        self._forget_vanished({c.location for c in candidates})

    def _root_candidates(self, root: str) -> tuple[tuple[_Candidate, ...], Problem | None]:
        real = os.path.realpath(root)
        key = stat_key(real)
        cached = self._roots.get(root)
        if (
            cached is not None
            and cached[0] == real
            and cached[1] == key
            # a dangling link whose target has appeared since must be read again
            and not any(c.problem is not None and os.path.exists(c.location) for c in cached[2])
        ):
            return cached[2], None
        if key[0] < 0:
            missing = Problem(
                "missing-root",
                f"Environment root {root} cannot be read ({os.strerror(-key[0])}).",
            )
            self._log_once(root, missing)
            self._roots.pop(root, None)
            return (), missing
        found: list[_Candidate] = []
        try:
            entries = sorted(os.scandir(real), key=lambda e: e.name)
        except OSError as err:
            unreadable = Problem("unreadable-root", f"Environment root {root} cannot be listed: {err}")
            self._log_once(root, unreadable)
            return (), unreadable
        catalog_by_name = self._catalog_by_name()
        for entry in entries:
            if entry.name.startswith("."):
                continue
            # The resolved root's child is itself no symlink, so it is already a real path.
            location = entry.path
            path = os.path.join(root, entry.name)
            alias_of = None
            problem: Problem | None = None
            if entry.is_symlink():
                alias_of = location = os.path.realpath(entry.path)
                if not os.path.exists(location):
                    target = os.readlink(entry.path)
                    problem = Problem(
                        "dangling-symlink",
                        f"{path} is a symlink to {target}, which does not exist.",
                    )
            elif not entry.is_dir():
                continue
            catalog = catalog_by_name.get(entry.name)
            found.append(_Candidate(entry.name, path, location, root, alias_of, catalog, problem))
        result = tuple(found)
        self._roots[root] = (real, key, result)
        return result, None

    def _explicit_candidate(self, prefix: str, source: str, entry: Mapping[str, Any] | None) -> _Candidate:
        path = os.path.abspath(os.path.expanduser(prefix))
        name = str(entry["name"]) if entry and entry.get("name") else os.path.basename(path)
        problem = None
        if not os.path.exists(path):
            problem = Problem("missing-prefix", f"Configured environment {path} does not exist.")
        catalog = entry if entry is not None else self._catalog_by_name().get(name)
        # Never an alias, even when a symlink: an explicitly configured env is listed once.
        return _Candidate(name, path, os.path.realpath(path), source, None, catalog, problem)

    def _scan(self, cand: _Candidate, check_meta: bool) -> _Scan:
        prefix = cand.location
        cached = self._scans.get(prefix)
        # A directory that is no environment (yet) is watched for its conda-meta at every listing.
        needs_meta = check_meta or not cached.is_env if cached is not None else True
        if (
            cached is not None
            and _unchanged(cached.watch)
            and (not needs_meta or _unchanged(cached.meta_watch))
        ):
            return cached
        scan = self._read_env(cand, prefix)
        self._scans[prefix] = scan
        for problem in scan.problems:
            self._log_once(cand.path, problem)
        return scan

    def _read_env(self, cand: _Candidate, prefix: str) -> _Scan:
        # Stat before reading, so a change racing with the read shows up at the next listing.
        meta = prefix + "/conda-meta"
        kernels_dir = prefix + "/share/jupyter/kernels"
        sidecar_path = os.path.join(meta, SIDECAR_NAME)
        # The prefix (its mode decides read_only) and the sidecar (edited in place by `stamp`).
        meta_watch = tuple((p, stat_key(p)) for p in (meta, prefix, sidecar_path))
        kernels_key = stat_key(kernels_dir)
        problems: list[Problem] = []
        if cand.problem is not None:
            problems.append(cand.problem)
        kernels: list[_RawKernel] = []
        kernel_files: list[tuple[str, StatKey]] = []
        sidecar: Mapping[str, Any] | None = None
        has_history = False
        is_env = cand.problem is not None  # a broken entry in a root is reported, not skipped
        if cand.problem is None:
            try:
                has_history, sampled, private = _sample_records(meta)
                is_env = has_history or sampled > 0
            except FileNotFoundError:
                is_env = False
            except OSError as err:
                is_env = True  # it looks like an environment we are not allowed to read
                problems.append(Problem("unreadable", f"Cannot read {meta}: {err.strerror or err}."))
            else:
                if private:
                    problems.append(
                        Problem(
                            "private-records",
                            f"Package records in {meta} are readable only by their owner "
                            f"({private} of {sampled} checked have mode 0600); other users cannot "
                            "inspect this environment. Fix: chmod a+r conda-meta/*.json",
                            severity="warning",
                        )
                    )
                if is_env:
                    sidecar, sidecar_problem = _read_sidecar(sidecar_path)
                    if sidecar_problem:
                        problems.append(sidecar_problem)
            if is_env:
                kernels, kernel_files = _read_kernels(prefix, problems)
        return _Scan(
            serial=next(self._serials),
            watch=((kernels_dir, kernels_key), *kernel_files),
            meta_watch=meta_watch,
            is_env=is_env,
            prefix=prefix,
            kernels=tuple(kernels),
            problems=tuple(problems),
            read_only=not os.access(prefix, os.W_OK),
            sidecar=sidecar,
            has_history=has_history,
        )

    # -- assembly -------------------------------------------------------------------------------

    def _assemble(
        self, candidates: list[_Candidate], scans: list[_Scan], root_problems: list[Problem]
    ) -> Snapshot:
        seen_prefixes: dict[str, int] = {}
        kept: list[tuple[_Candidate, _Scan]] = []
        for cand, scan in zip(candidates, scans, strict=True):
            if not scan.is_env:
                continue
            # The same environment reached through two sources is listed once (first source wins);
            # a symlink inside a root (an alias such as `latest -> isis4.3.0`) is kept on purpose.
            if cand.alias_of is None:
                index = seen_prefixes.get(scan.prefix)
                if index is not None:
                    if cand.catalog is not None and cand.source != "env_prefixes":
                        # A catalog entry about an env found under a root still applies to it
                        # (its name, owner, allowed_groups): the admin wrote it about that env.
                        first, first_scan = kept[index]
                        merged = {**(first.catalog or {}), **cand.catalog}
                        name = str(cand.catalog.get("name") or first.wanted_name)
                        kept[index] = (replace(first, wanted_name=name, catalog=merged), first_scan)
                    continue
                seen_prefixes[scan.prefix] = len(kept)
            kept.append((cand, scan))

        env_names = self._env_names([c for c, _ in kept])
        name_format, display_format = self._formats(root_problems)
        wanted: list[tuple[str, tuple[str, ...]]] = []
        for name, (_, scan) in zip(env_names, kept, strict=True):
            for raw in scan.kernels:
                language = str(raw.spec.get("language", ""))
                wanted.append((kernel_name(name_format, name, raw.raw_name, language), (name, raw.raw_name)))
        kernel_names = resolve_collisions(wanted)

        envs: list[SharedEnv] = []
        kernels: dict[str, KernelEntry] = {}
        for name, (cand, scan) in zip(env_names, kept, strict=True):
            problems = list(scan.problems)
            allowed = self._allowed(name, cand.catalog, problems)
            own: list[KernelEntry] = []
            for raw in scan.kernels:
                language = str(raw.spec.get("language", ""))
                shown = str(raw.spec.get("display_name") or raw.raw_name)
                own.append(
                    KernelEntry(
                        name=kernel_names[(name, raw.raw_name)],
                        raw_name=raw.raw_name,
                        env=name,
                        resource_dir=raw.resource_dir,
                        display_name=display_name(display_format, name, shown, language),
                        language=language,
                        spec=raw.spec,
                    )
                )
            own.sort(key=lambda k: k.name)
            record = SharedEnv(
                name=name,
                path=cand.path,
                prefix=scan.prefix,
                source=cand.source,
                kernels=tuple(own),
                problems=tuple(problems),
                allowed=allowed,
                read_only=scan.read_only,
                alias_of=cand.alias_of,
                sidecar=scan.sidecar,
                catalog=cand.catalog,
                has_history=scan.has_history,
            )
            envs.append(record)
            if record.usable:
                kernels.update((k.name, k) for k in own)
        return Snapshot(
            envs=tuple(envs),
            kernels=dict(sorted(kernels.items())),
            problems=tuple(root_problems),
            generation=self._snapshot.generation + 1,
            _by_name={e.name: e for e in envs},
        )

    def _formats(self, problems: list[Problem]) -> tuple[str, str]:
        """The configured name formats, or the defaults (with a problem) when one cannot be used."""
        cfg, defaults = self.config, DiscoveryConfig()
        name_format, display_format = cfg.name_format, cfg.display_name_format
        try:
            kernel_name(name_format, "env", "kernel", "python")
        except (KeyError, IndexError, ValueError, AttributeError) as err:
            problems.append(_bad_format("name_format", name_format, err, defaults.name_format))
            name_format = defaults.name_format
        try:
            display_name(display_format, "env", "Python 3", "python")
        except (KeyError, IndexError, ValueError, AttributeError) as err:
            problems.append(
                _bad_format("display_name_format", display_format, err, defaults.display_name_format)
            )
            display_format = defaults.display_name_format
        for problem in problems:
            if problem.kind == "bad-config":
                self._log_once("config", problem)
        return name_format, display_format

    def _env_names(self, cands: list[_Candidate]) -> list[str]:
        """Unique environment names, first configured source first; later clashes get qualified."""
        names: list[str] = []
        taken: set[str] = set()
        for cand in cands:
            name = cand.wanted_name
            if name.lower() in taken:
                parent = os.path.basename(os.path.dirname(os.path.dirname(cand.path)))
                qualified = clean_kernel_name(f"{parent}-{name}") if parent else name
                name = qualified
                counter = 2
                while name.lower() in taken:
                    name = f"{qualified}-{counter}"
                    counter += 1
            taken.add(name.lower())
            names.append(name)
        return names

    def _allowed(self, name: str, catalog: Mapping[str, Any] | None, problems: list[Problem]) -> bool:
        cfg = self.config
        if not any(fnmatch.fnmatchcase(name, pat) for pat in cfg.allowed_envs):
            problems.append(Problem("not-allowed", "it matches none of the allowed_envs patterns", "info"))
            return False
        denied = [pat for pat in cfg.denied_envs if fnmatch.fnmatchcase(name, pat)]
        if denied:
            problems.append(
                Problem("not-allowed", f"it is denied by denied_envs pattern {denied[0]!r}", "info")
            )
            return False
        groups = catalog.get("allowed_groups") if catalog else None
        if groups and not (set(map(str, groups)) & cfg.user_groups):
            problems.append(
                Problem(
                    "not-allowed",
                    "the catalog restricts it to the groups " + ", ".join(map(str, groups)),
                    "info",
                )
            )
            return False
        return True

    # -- catalog --------------------------------------------------------------------------------

    def _load_catalog(self) -> tuple[tuple[Mapping[str, Any], ...], tuple[Problem, ...]]:
        path = self.config.catalog
        if not path:
            return (), ()
        key = stat_key(path)
        if key == self._catalog_key:
            return self._catalog
        self._catalog_key = key
        self._roots.clear()  # root candidates carry catalog annotations
        self._catalog = read_catalog(path)
        for problem in self._catalog[1]:
            self._log_once(path, problem)
        return self._catalog

    def _catalog_by_name(self) -> dict[str, Mapping[str, Any]]:
        return {str(e["name"]): e for e in self._catalog[0] if e.get("name")}

    # -- housekeeping ---------------------------------------------------------------------------

    def _forget_vanished(self, paths: set[str]) -> None:
        for gone in set(self._scans) - paths:
            del self._scans[gone]

    def _log_once(self, where: str, problem: Problem) -> None:
        marker = (where, problem.message)
        if marker in self._logged or problem.severity == "info":
            return
        self._logged.add(marker)
        level = logging.ERROR if problem.severity == "error" else logging.WARNING
        log.log(level, "[envshare] %s: %s", where, problem.message)


def _bad_format(label: str, value: str, err: Exception, fallback: str) -> Problem:
    return Problem(
        "bad-config",
        f"EnvShare.{label} = {value!r} cannot be used ({err!r}); {fallback!r} is used instead.",
        "warning",
    )


class EnvUnavailable(Exception):
    """A kernel was asked of an environment that is gone, denied or broken."""

    def __init__(self, env: str, message: str) -> None:
        super().__init__(message)
        self.env = env
        self.message = message


RECORD_SAMPLE = 8


def _sample_records(meta: str) -> tuple[bool, int, int]:
    """``(has history, records checked, records private to their owner)`` of a conda-meta dir.

    Only a few records are checked: a listing must stay cheap on environments with thousands of
    packages, and an unpublished environment has all its records at 0600 anyway. The full check is
    the health report's job.
    """
    has_history = os.path.exists(os.path.join(meta, "history"))
    sampled = private = 0
    with os.scandir(meta) as it:
        for item in it:
            if item.name.endswith(".json"):
                sampled += 1
                try:
                    if not item.stat().st_mode & 0o004:
                        private += 1
                except OSError:
                    private += 1
                if sampled >= RECORD_SAMPLE:
                    break
    return has_history, sampled, private


def _read_sidecar(path: str) -> tuple[Mapping[str, Any] | None, Problem | None]:
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:
        return None, Problem("bad-sidecar", f"{path} cannot be read: {err}", "warning")
    if not isinstance(data, dict):
        return None, Problem("bad-sidecar", f"{path} is not a JSON object", "warning")
    return data, None


def _read_kernels(prefix: str, problems: list[Problem]) -> tuple[list[_RawKernel], list[tuple[str, StatKey]]]:
    kernels: list[_RawKernel] = []
    files: list[tuple[str, StatKey]] = []
    base = prefix + "/share/jupyter/kernels"
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except FileNotFoundError:
        return kernels, files
    except OSError as err:
        problems.append(Problem("unreadable-kernels", f"Cannot list {base}: {err}", "warning"))
        return kernels, files
    for entry in entries:
        if not entry.is_dir():
            continue
        spec_file = os.path.join(entry.path, "kernel.json")
        key = stat_key(spec_file)
        files.append((spec_file, key))  # watched even when missing: it may be written later
        if key[0] < 0:
            continue
        spec, problem = load_kernel_json(spec_file)
        if problem is not None:
            problems.append(Problem("bad-kernelspec", f"kernel '{entry.name}': {problem}", "warning"))
            continue
        assert spec is not None
        kernels.append(_RawKernel(entry.name, entry.path, spec))
    return kernels, files


def load_kernel_json(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """A kernel.json's content, or why it cannot be used."""
    try:
        with open(path, "rb") as fh:
            spec = json.loads(fh.read().decode("utf-8"))
    except OSError as err:
        return None, f"{path} cannot be read: {err.strerror or err}"
    except (UnicodeDecodeError, ValueError) as err:
        return None, f"{path} is not valid JSON: {err}"
    if not isinstance(spec, dict):
        return None, f"{path} is not a JSON object"
    argv = spec.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return None, f"{path} has no usable argv (a non-empty list of strings)"
    return spec, None


def read_catalog(path: str) -> tuple[tuple[Mapping[str, Any], ...], tuple[Problem, ...]]:
    """Entries of a catalog YAML file (a list, or a mapping with ``environments``)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return (), (Problem("bad-catalog", f"Catalog {path} does not exist.", "warning"),)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        return (), (Problem("bad-catalog", f"Catalog {path} cannot be read: {err}", "warning"),)
    if isinstance(data, dict):
        data = data.get("environments", [])
    if data is None:
        data = []
    if not isinstance(data, list):
        return (), (Problem("bad-catalog", f"Catalog {path} must list environments.", "warning"),)
    entries: list[Mapping[str, Any]] = []
    problems: list[Problem] = []
    for index, item in enumerate(data):
        if isinstance(item, dict) and (item.get("name") or item.get("prefix")):
            entries.append(item)
        else:
            problems.append(
                Problem(
                    "bad-catalog",
                    f"Catalog {path}, entry {index + 1}: needs a 'name' or a 'prefix'.",
                    "warning",
                )
            )
    return tuple(entries), tuple(problems)


_ENGINES: dict[DiscoveryConfig, EnvDiscovery] = {}
_ENGINES_LOCK = threading.Lock()


def discovery_for(config: DiscoveryConfig) -> EnvDiscovery:
    """The process-wide engine for ``config``, so every component shares one cache."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(config)
        if engine is None:
            engine = _ENGINES[config] = EnvDiscovery(config)
        return engine


def iter_usable(snapshot: Snapshot) -> Iterator[SharedEnv]:
    """The environments whose kernels are offered."""
    return (e for e in snapshot.envs if e.usable)
