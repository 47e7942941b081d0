"""The one configuration surface admins set (``c.EnvShare.*``), shared by the server, CLI and provisioner."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_path, jupyter_data_dir, jupyter_runtime_dir
from traitlets import Bool, Dict, Enum, Float, List, Unicode, default, validate
from traitlets.config import Config, Configurable, LoggingConfigurable
from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

from .discovery import DiscoveryConfig

# The config files the server reads; the CLI and a provisioner started without a server (nbclient,
# papermill) read the same ones so admins configure exactly once.
CONFIG_BASENAMES = ("jupyter_config", "jupyter_server_config")


class EnvShare(LoggingConfigurable):
    """Settings for the shared conda environments this server exposes as kernels."""

    env_roots = List(
        Unicode(),
        default_value=[],
        help="""Directories whose children are shared environments, e.g.
        /nfs/cpkgs/anaconda3_linux/envs or /nfs/cpkgs/current/envs. Symlinks in these paths
        (a `current` link swapped during a migration) are resolved again at every listing.""",
    ).tag(config=True)

    env_prefixes = List(
        Unicode(),
        default_value=[],
        help="Explicit environment prefixes to expose, in addition to the children of env_roots.",
    ).tag(config=True)

    catalog = Unicode(
        None,
        allow_none=True,
        help="""Optional YAML file listing environments (name, prefix, display_name, description,
        owner, contact, allowed_groups, spec/lock locations). Entries without a prefix annotate
        environments found under env_roots by name.""",
    ).tag(config=True)

    allowed_envs = List(
        Unicode(),
        default_value=["*"],
        help="Glob patterns on environment names; only matching environments are exposed.",
    ).tag(config=True)

    denied_envs = List(
        Unicode(),
        default_value=[],
        help="Glob patterns on environment names that are never exposed, even if allowed.",
    ).tag(config=True)

    name_format = Unicode(
        "conda-env-{env}-{kernel}",
        help="""Kernel name format. Fields: {env} (environment name), {kernel} (kernel directory
        name with nb_conda_kernels' short forms: python2/python3 -> py, ir -> r), {raw_kernel}
        (the directory name as is), {language}. The default keeps nb_conda_kernels' names so
        notebooks saved under it open unchanged. Unsafe characters are replaced by '_'.""",
    ).tag(config=True)

    display_name_format = Unicode(
        "{display_name} [shared: {env}]",
        help="Kernel display name format. Fields: {display_name} (from kernel.json), {env}, {language}.",
    ).tag(config=True)

    revalidate_interval = Float(
        0.0,
        help="""Seconds during which a kernel listing is served without checking the disk. 0 (the
        default) checks a handful of mtimes on every listing, so changes show at once; a few seconds
        suits slow network filesystems.""",
    ).tag(config=True)

    metadata_interval = Float(
        5.0,
        help="""Seconds between checks of environments' conda-meta (health and provenance fields of
        the kernel metadata). The kernel list itself is checked at every listing.""",
    ).tag(config=True)

    refresh_interval = Float(
        60.0,
        help="Seconds between background refreshes of the environment list in the server (0: off).",
    ).tag(config=True)

    freeze_startup_objects = Bool(
        True,
        help="""Once the server has started, exempt the objects that exist then (modules, classes,
        configuration: some 200,000 in a JupyterLab server) from the garbage collector's full passes
        (Python's gc.freeze). Under a burst of API calls a full pass over them stalled every request
        of the server for 100-170 ms every few seconds; afterwards a full pass takes a few ms. Those
        objects are still freed when no longer referenced, but not when they end up in reference
        cycles. False keeps the interpreter's default.""",
    ).tag(config=True)

    no_user_site = Bool(
        True,
        help="Set PYTHONNOUSERSITE=1 in shared kernels so ~/.local cannot shadow shared packages.",
    ).tag(config=True)

    pkgs_dirs = Unicode(
        "{home}/.cache/envshare/conda-pkgs",
        help="""Per-user conda package cache given to kernels as CONDA_PKGS_DIRS, so users never
        contend for the shared cache. Fields: {user}, {home}, {env}. Empty: leave unset.""",
    ).tag(config=True)

    activation_timeout = Float(
        30.0,
        help="Seconds an environment's activate.d scripts may take before activation gives up on them.",
    ).tag(config=True)

    extra_kernel_env = Dict(
        default_value={},
        help="Extra environment variables set in every shared kernel (after activation).",
    ).tag(config=True)

    guard_mode = Enum(
        ["advise", "warn", "off"],
        default_value="advise",
        help="""What the install guard does with `!conda install`, `%pip install` and their cousins
        aimed at a shared environment: advise (stop them and show advice, the default), warn (show
        the advice and let them run) or off.""",
    ).tag(config=True)

    advice_template = Unicode(
        "",
        help="""Markdown shown when the guard intercepts a command (empty: the built-in text).
        Fields: {env}, {outcome}, {reason_sentence}, {contact}, {packages}, {specs_plain},
        {request_command}.""",
    ).tag(config=True)

    contact = Unicode(
        "the admins of this hub",
        help="Who manages the shared environments, as the advice names them (a catalog entry's "
        "'contact' or 'owner' wins for its environment).",
    ).tag(config=True)

    database_url = Unicode(
        help="""Where requests, supporters and usage events are stored (SQLAlchemy URL). Default:
        SQLite in the Jupyter data dir, for one machine; a PostgreSQL URL
        (postgresql+psycopg://...) for a hub whose servers run on several nodes.""",
    ).tag(config=True)

    @default("database_url")
    def _database_url_default(self) -> str:
        return f"sqlite:///{Path(jupyter_data_dir()) / 'envshare.db'}"

    admin_users = List(
        Unicode(),
        default_value=[],
        help="User names that administer shared environments (see all, work the request queue). "
        "JupyterHub admins are admins too.",
    ).tag(config=True)

    admin_groups = List(
        Unicode(),
        default_value=[],
        help="Groups (JupyterHub groups, or Unix groups outside a hub) whose members are admins.",
    ).tag(config=True)

    spool_dir = Unicode(
        help="Directory of the per-user event spool (kernel launches, guard events).",
    ).tag(config=True)

    @default("spool_dir")
    def _spool_dir_default(self) -> str:
        return str(Path(jupyter_runtime_dir()) / "envshare")

    @validate("name_format", "display_name_format", "pkgs_dirs")
    def _valid_template(self, proposal: Any) -> str:
        # A template with an unknown field would break every listing or launch: keep the default
        # and say why, loudly, rather than stop the server or empty the kernel list.
        fields = {
            "name_format": {"env": "e", "kernel": "k", "raw_kernel": "k", "language": "python"},
            "display_name_format": {"display_name": "Python 3", "env": "e", "language": "python"},
            "pkgs_dirs": {"user": "u", "home": "/home/u", "env": "e"},
        }[proposal["trait"].name]
        value: str = proposal["value"]
        try:
            value.format(**fields)
        except (KeyError, IndexError, ValueError, AttributeError) as err:
            fallback: str = proposal["trait"].default_value
            self.log.error(
                "EnvShare.%s = %r is not a valid template (%r); it may use the fields %s. Using %r instead.",
                proposal["trait"].name,
                value,
                err,
                ", ".join("{" + f + "}" for f in fields),
                fallback,
            )
            return fallback
        return value

    def discovery_config(self) -> DiscoveryConfig:
        """The immutable subset of settings that discovery depends on."""
        return DiscoveryConfig(
            env_roots=tuple(self.env_roots),
            env_prefixes=tuple(self.env_prefixes),
            catalog=self.catalog or None,
            allowed_envs=tuple(self.allowed_envs),
            denied_envs=tuple(self.denied_envs),
            name_format=self.name_format,
            display_name_format=self.display_name_format,
            revalidate_interval=self.revalidate_interval,
            metadata_interval=self.metadata_interval,
            user_groups=current_user_groups(),
        )


def current_user() -> str:
    """The person this process serves: the hub user when spawned by JupyterHub, else the Unix user."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


def user_name(uid: int) -> str:
    """The login name of a user id (the number itself when the system does not know it)."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def current_user_groups() -> frozenset[str]:
    """Names of the Unix groups of this process (for catalog ``allowed_groups``)."""
    import grp

    names: set[str] = set()
    for gid in {os.getgid(), *os.getgroups()}:
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            names.add(str(gid))
    return frozenset(names)


def is_admin(user: Any, settings: EnvShare, name: str | None = None) -> bool:
    """Whether a jupyter_server user administers shared environments.

    Hub admins (the hub's user model says ``admin``), ``admin_users``, and members of
    ``admin_groups`` (hub groups; outside a hub, this process's Unix groups when the user is the
    Unix user running the server). ``name`` overrides the user's own name (see ``handlers``).
    """
    if name is None:
        name = str(getattr(user, "username", None) or getattr(user, "name", None) or user)
    hub_user = getattr(user, "hub_user", None)
    hub = hub_user if isinstance(hub_user, dict) else {}
    if hub.get("admin") is True or name in settings.admin_users:
        return True
    if not settings.admin_groups:
        return False
    groups = {str(g) for g in hub.get("groups") or []}
    if not hub and name == current_user():
        groups |= current_user_groups()
    return bool(groups & set(settings.admin_groups))


def load_config_files(paths: list[str] | None = None) -> Config:
    """Merge the Jupyter config files the server reads, lowest priority first."""
    merged = Config()
    for directory in reversed(paths if paths is not None else jupyter_config_path()):
        for base in CONFIG_BASENAMES:
            dropins = Path(directory) / f"{base}.d"
            if dropins.is_dir():
                for item in sorted(dropins.glob("*.json")):
                    merged.merge(_load_one(JSONFileConfigLoader, item))
            for suffix, loader in ((".json", JSONFileConfigLoader), (".py", PyFileConfigLoader)):
                path = Path(directory) / f"{base}{suffix}"
                if path.is_file():
                    merged.merge(_load_one(loader, path))
    return merged


def _load_one(loader: Any, path: Path) -> Config:
    try:
        config: Config = loader(path.name, path=str(path.parent)).load_config()
    except Exception as err:  # a broken admin file must not break kernels; the server reports it too
        import logging

        logging.getLogger("jupyter_envshare").warning("Ignoring config file %s: %s", path, err)
        return Config()
    return config


def envshare_settings(parent: Configurable | None = None) -> EnvShare:
    """The EnvShare settings for a component: its parent's config when it has one, else the files."""
    if parent is not None and "EnvShare" in parent.config:
        return EnvShare(parent=parent)
    return EnvShare(config=load_config_files())
