"""Sandboxed jinja2 rendering of template packs, with the locale fallback chain requested → default → en.

A template defines blocks (subject, title, body, …); each block is rendered on its own so one file serves
an e-mail (subject + body), a banner (title + body) and a post (body). Undefined variables are errors, and
every template error names the template file and line.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from continuity.errors import InputError, Location
from continuity.sinks.base import Rendered

if TYPE_CHECKING:
    # jinja2 is imported where templates are compiled: loading a config only checks that files exist.
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateSource(Protocol):
    """What a catalog needs of a loaded config (continuity.config.loader.LoadedConfig is one): where the
    template packs are, and the organisation's locales."""

    @property
    def template_dirs(self) -> list[Path]: ...

    @property
    def config(self) -> Any: ...


def make_environment(dirs: list[Path], *, autoescape: bool = False) -> ImmutableSandboxedEnvironment:
    """Text blocks (mail, posts, banners kept as data) render raw; HTML pages pass autoescape=True.

    Compiled templates are kept on disk between processes (jinja2's bytecode cache in its private per-user
    folder, one per autoescape setting), keyed by the file and checked against a checksum of its source, so
    `validate` and every command compile a template once, and a template edited since is compiled again. Texts
    given as strings (campaign FAQ entries and answers) are compiled once per environment and source."""
    import jinja2

    return _environment_class()(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs], encoding="utf-8"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=autoescape,
        bytecode_cache=_bytecode_cache(autoescape),
    )


STRINGS_KEPT = 2048  # compiled string templates kept per environment


@functools.lru_cache(maxsize=1)
def _environment_class() -> type[ImmutableSandboxedEnvironment]:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Environment(ImmutableSandboxedEnvironment):
        """The sandbox, with `from_string` compiled once per source: the same text renders for every locale
        and situation (a Template keeps no state between renders)."""

        def from_string(self, source: Any, globals: Any = None, template_class: Any = None) -> Any:  # noqa: A002
            if globals is not None or template_class is not None or not isinstance(source, str):
                return super().from_string(source, globals, template_class)
            kept: dict[str, Any] = self.__dict__.setdefault("_continuity_strings", {})
            tmpl = kept.get(source)
            if tmpl is None:
                tmpl = super().from_string(source)
                if len(kept) >= STRINGS_KEPT:
                    kept.clear()
                kept[source] = tmpl
            return tmpl

    return Environment


@functools.lru_cache(maxsize=2)
def _bytecode_cache(autoescape: bool) -> Any:
    """jinja2's file-system bytecode cache, or None where its folder cannot be had (a read-only /tmp)."""
    import jinja2

    try:
        base = jinja2.FileSystemBytecodeCache()  # its own checks: a folder of this user's, mode 0700
        folder = Path(base.directory) / ("continuity-html" if autoescape else "continuity-text")
        folder.mkdir(mode=0o700, exist_ok=True)
        return jinja2.FileSystemBytecodeCache(str(folder))
    except (OSError, RuntimeError):
        return None


# One environment per (search dirs, autoescape) for the whole process: every catalog of the same template packs
# (the engine's, each responder's, validate's, the public pages') shares the compiled templates instead of
# compiling them again. Nothing goes stale: a different set of dirs (a reloaded config that names other packs)
# is another key, and jinja2 checks each file's mtime when a catalog first asks for it (auto_reload), so a
# template edited on disk is compiled again for the next catalog.
_SHARED: dict[tuple[tuple[str, ...], bool], ImmutableSandboxedEnvironment] = {}


def shared_environment(dirs: list[Path], *, autoescape: bool = False) -> ImmutableSandboxedEnvironment:
    """The process's environment for these dirs (see _SHARED); made on first use."""
    key = (tuple(os.path.abspath(d) for d in dirs), autoescape)
    env = _SHARED.get(key)
    if env is None:
        env = _SHARED.setdefault(key, make_environment([Path(d) for d in key[0]], autoescape=autoescape))
    return env


def shown_path(filename: str | None, rel: str) -> str:
    from continuity.config.yamlsrc import pretty_path

    return pretty_path(Path(filename)) if filename else rel


def template_line(tb: TracebackType | None, tmpl: jinja2.Template) -> int | None:
    """The template's own line for an error raised while rendering it (not the generated Python's)."""
    line = None
    while tb is not None:
        if tmpl.filename and tb.tb_frame.f_code.co_filename == tmpl.filename:
            line = tmpl.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


class TemplateCatalog:
    """Finds and renders the templates a config can use."""

    def __init__(self, loaded: TemplateSource) -> None:
        self.dirs = loaded.template_dirs
        org = loaded.config.organisation
        self.default_locale = org.default_locale
        self.locales = list(org.locales)
        self.staff_locale = org.staff_lang
        self._env: ImmutableSandboxedEnvironment | None = None
        self._cache: dict[str, jinja2.Template] = {}
        # Which file serves (name, locale), kept like the compiled templates above for the catalog's life (one
        # config load; a reload makes a new catalog): a step looked it up with a stat per folder and locale.
        self._found: dict[tuple[str, str], str] = {}

    @property
    def env(self) -> ImmutableSandboxedEnvironment:
        if self._env is None:
            self._env = shared_environment(self.dirs)
        return self._env

    def locales_for(self, audience: str) -> list[str]:
        """Staff read one language; customers get every language the organisation serves."""
        return [self.staff_locale] if audience == "staff" else list(self.locales)

    def chain(self, locale: str) -> list[str]:
        out: list[str] = []
        for loc in (locale, self.default_locale, "en"):
            if loc not in out:
                out.append(loc)
        return out

    def find(self, name: str, locale: str) -> str | None:
        """The template path (relative to the search dirs) used for `name` in `locale`, after fallback."""
        found = self._found.get((name, locale))
        if found is not None:
            return found
        for loc in self.chain(locale):
            rel = f"{loc}/{name}.j2"
            if any((d / rel).is_file() for d in self.dirs):
                self._found[(name, locale)] = rel
                return rel
        return None  # not kept: a template added later is found by the next step

    def _load(self, rel: str) -> jinja2.Template:
        import jinja2

        cached = self._cache.get(rel)
        if cached is not None:
            return cached
        try:
            tmpl = self.env.get_template(rel)
        except jinja2.TemplateSyntaxError as exc:
            where = Location(shown_path(exc.filename, rel), exc.lineno)
            raise InputError(f"template syntax error: {exc.message}", where) from None
        except UnicodeDecodeError:
            raise InputError("template is not valid UTF-8", Location(rel)) from None
        self._cache[rel] = tmpl
        return tmpl

    def render(self, name: str, locale: str, context: dict[str, Any]) -> Rendered:
        import jinja2

        rel = self.find(name, locale)
        if rel is None:
            raise InputError(f"template {name!r} not found for locale {locale!r}", Location(name))
        tmpl = self._load(rel)
        blocks: dict[str, str] = {}
        try:
            for block, func in tmpl.blocks.items():
                blocks[block] = tmpl.environment.concat(func(tmpl.new_context(dict(context)))).strip()
        except jinja2.UndefinedError as exc:
            line = template_line(sys.exc_info()[2], tmpl)
            raise InputError(f"template error: {exc.message}", Location(shown_path(tmpl.filename, rel), line)) from None
        except jinja2.exceptions.SecurityError as exc:
            line = template_line(sys.exc_info()[2], tmpl)
            where = Location(shown_path(tmpl.filename, rel), line)
            raise InputError(f"template tried an unsafe operation: {exc}", where) from None
        except (TypeError, ValueError, ArithmeticError, jinja2.TemplateError) as exc:
            line = template_line(sys.exc_info()[2], tmpl)
            raise InputError(f"template error: {exc}", Location(shown_path(tmpl.filename, rel), line)) from None
        if "body" not in blocks:
            raise InputError("template defines no {% block body %}", Location(shown_path(tmpl.filename, rel), 1))
        # The locale actually used, so a fallback is visible in the output.
        return Rendered(locale=rel.split("/", 1)[0], blocks=blocks)

    def render_all(self, name: str, audience: str, contexts: dict[str, dict[str, Any]]) -> list[Rendered]:
        """Render for every locale of the audience; contexts maps locale → variables. Primary first."""
        return [self.render(name, loc, contexts[loc]) for loc in self.locales_for(audience)]
