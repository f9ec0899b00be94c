"""HONEST openings for the Dialogue env: the paper's race and religion templates, with counterfactual identities.

The paper (arXiv 2405.18572) measures toxicity on HONEST templates (Nozza et al. 2021) rewritten for race and
religion, published as the hub dataset ``Znreza/HONEST-RACE-RELIGION-AND-COUNTERFACTS``. Its files do not share a
schema, so each is read on its own:

- ``honest-race.csv``, ``honest-religion.csv``: one row per (template, identity) with the columns
  ``identity, type, category, gender, number, template_masked, matched_gender, raw``; ``raw`` holds the template
  with ``[I]`` (the identity term) and ``[M]`` (the word to complete), ``template_masked`` the template with the
  identity filled in;
- ``honest_race_counterfactuals.csv``: a single ``text`` column, each the same template as a row of
  ``honest-race.csv`` with another identity. A text is paired with the template whose ``raw`` it matches, and the
  words standing where ``[I]`` stands are its identity.

fairgym also ships ``"honest-fairgym"`` (``envs/data/honest-fairgym.csv``): 20 templates in HONEST's schema and
style ("[I] should work as a [M].") written for fairgym, each for eight identities ("the Black person", ...,
"the Hindu person"), so HONEST-format turns run offline.

Every identity term is a group of the env; an *opening* is one template written for one identity, and the
counterfactual openings of an opening are the same template with the other identities. Only the standard
library is used here: ``fairgym.envs`` never imports torch or pandas.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

HUB_ID = "Znreza/HONEST-RACE-RELIGION-AND-COUNTERFACTS"
TEMPLATE_COLUMNS = ("identity", "type", "category", "gender", "number", "template_masked", "matched_gender", "raw")
COUNTERFACTUAL_COLUMNS = ("text",)
COUNTERFACTUAL_FILE = "honest_race_counterfactuals.csv"
# hub source name -> (template file, counterfactual file or None)
SOURCES: dict[str, tuple[str, str | None]] = {
    "honest-race": ("honest-race.csv", COUNTERFACTUAL_FILE),
    "honest-religion": ("honest-religion.csv", None),
}
TEMPLATE_FILES = tuple(files[0] for files in SOURCES.values())
SHIPPED = {"honest-fairgym": Path(__file__).parent / "data" / "honest-fairgym.csv"}  # offline, in HONEST's schema
IDENTITY, MASK = "[I]", "[M]"


@dataclass(frozen=True)
class Opening:
    """One HONEST template written for one identity: the sentence the agent is asked to complete.

    Attributes:
        template: the template (``raw``) with ``[I]`` and ``[M]``; openings of one template share it.
        identity: the identity term, the episode's group.
        prompt: the sentence up to the masked word (``"the Black woman should work as a"``).
        counterfactual: whether it comes from the counterfactual file.
        type: the template's ``type`` column (``""`` for counterfactual texts), e.g. ``occupation``.
    """

    template: str
    identity: str
    prompt: str
    counterfactual: bool = False
    type: str = ""


@dataclass(frozen=True)
class HonestOpenings:
    """The openings of one or more HONEST files: every identity is a group; openings pair by template."""

    source: str
    openings: tuple[Opening, ...]
    unmatched: int = 0  # counterfactual texts that match no template (left out)

    @property
    def identities(self) -> tuple[str, ...]:
        """Identity terms in file order (original files first, then counterfactual identities)."""
        return tuple(dict.fromkeys(o.identity for o in self.openings))

    def for_identity(self, identity: str) -> tuple[Opening, ...]:
        """The openings written for ``identity``, in the order of their templates' first appearance, so two
        identities with the same templates list them alike (the same seed then draws the same templates)."""
        order = {t: i for i, t in enumerate(dict.fromkeys(o.template for o in self.openings))}
        return tuple(sorted((o for o in self.openings if o.identity == identity), key=lambda o: order[o.template]))

    def counterfactuals(self, opening: Opening) -> tuple[Opening, ...]:
        """The same template written for every other identity."""
        return tuple(o for o in self.openings if o.template == opening.template and o.identity != opening.identity)


def prompt_of(text: str) -> str:
    """The sentence up to the masked word: ``"the woman should work as a [M]."`` -> ``"the woman should work as
    a"`` (a text without ``[M]`` loses only its closing punctuation)."""
    head = text.split(MASK, 1)[0] if MASK in text else text
    return head.strip().rstrip(".!?,;:").strip()


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of ``path``, which must hold every one of ``columns``."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: columns {reader.fieldnames} lack {missing}; a HONEST "
                             f"{'counterfactual' if columns == COUNTERFACTUAL_COLUMNS else 'template'} file needs "
                             f"{', '.join(columns)} (the hub dataset {HUB_ID}).")
        return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]


def read_templates(path: Path) -> list[Opening]:
    """The openings of a template file (``honest-race.csv`` / ``honest-religion.csv``)."""
    openings = []
    for n, row in enumerate(_read_csv(path, TEMPLATE_COLUMNS), start=2):
        if not row["identity"] or IDENTITY not in row["raw"] or not row["template_masked"]:
            raise ValueError(f"{path} line {n}: a row needs an identity, a template_masked text and a raw template "
                             f"holding {IDENTITY}; got {row}.")
        openings.append(Opening(template=row["raw"], identity=row["identity"],
                                prompt=prompt_of(row["template_masked"]), type=row["type"]))
    return openings


def _template_pattern(template: str) -> re.Pattern[str]:
    """``template`` up to its mask as a regex, ``[I]`` capturing the identity words."""
    head = prompt_of(template)
    literal = re.escape(head).replace(re.escape(IDENTITY), r"(?P<identity>.+?)", 1)
    return re.compile(rf"^{literal}$", re.IGNORECASE)


def pair_counterfactuals(texts: list[str], templates: list[Opening]) -> tuple[list[Opening], int]:
    """Counterfactual openings: each text paired with the template it matches (the most specific one when
    several do), its identity read from where ``[I]`` stands. Returns the openings and the unmatched count."""
    known = {o.identity.lower(): o.identity for o in templates}
    raws = sorted({o.template for o in templates if IDENTITY in prompt_of(o.template)},
                  key=lambda r: -len(r.replace(IDENTITY, "")))
    patterns = [(raw, _template_pattern(raw)) for raw in raws]
    type_of = {o.template: o.type for o in templates}
    paired, unmatched = [], 0
    for text in texts:
        prompt = prompt_of(text)
        match = next(((raw, m) for raw, p in patterns if (m := p.match(prompt))), None)
        if match is None:
            unmatched += 1
            continue
        raw, m = match
        identity = m.group("identity").strip()
        identity = known.get(identity.lower(), identity)
        paired.append(Opening(template=raw, identity=identity, prompt=prompt, counterfactual=True,
                              type=type_of[raw]))
    return paired, unmatched


def _dedupe(openings: list[Opening]) -> tuple[Opening, ...]:
    """One opening per (template, identity): a counterfactual text that repeats an original row adds nothing."""
    seen: dict[tuple[str, str], Opening] = {}
    for o in openings:
        seen.setdefault((o.template, o.identity.lower()), o)
    return tuple(seen.values())


def read_openings(template_files: list[Path], counterfactual_file: Path | None, source: str) -> HonestOpenings:
    """Read the template files, then pair the counterfactual file's texts with their templates."""
    templates = [o for path in template_files for o in read_templates(path)]
    if not templates:
        raise ValueError(f"openings={source!r}: the template files {[str(p) for p in template_files]} hold no rows.")
    counterfactuals: list[Opening] = []
    unmatched = 0
    if counterfactual_file is not None:
        texts = [row["text"] for row in _read_csv(counterfactual_file, COUNTERFACTUAL_COLUMNS) if row["text"]]
        counterfactuals, unmatched = pair_counterfactuals(texts, templates)
        if texts and not counterfactuals:
            raise ValueError(f"{counterfactual_file}: none of its {len(texts)} texts matches a template of "
                             f"{[p.name for p in template_files]}; pass the counterfactual file of the same dataset.")
    return HonestOpenings(source=source, openings=_dedupe(templates + counterfactuals), unmatched=unmatched)


def _download_hint(files: list[str]) -> str:
    return (f"download {', '.join(files)} from the hub dataset {HUB_ID} on a connected machine (`hf download "
            f"{HUB_ID} {' '.join(files)} --repo-type dataset --local-dir <folder>`), copy the folder here and pass "
            "openings=<folder>")


PROBE_TIMEOUT = 3.0  # seconds the one request to the hub may take before the hub counts as out of reach


def _hub_offline() -> bool:
    from huggingface_hub import constants

    flag = str(os.environ.get("HF_HUB_OFFLINE", "")).lower()
    return bool(constants.HF_HUB_OFFLINE) or flag in ("1", "true", "yes", "on")


def _hub_problem(filename: str) -> str | None:
    """Why ``filename`` of the dataset cannot come from the hub now, from one request without retries (``None``:
    it can). huggingface_hub itself retries an unreachable hub five times, for about half a minute."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    if _hub_offline():
        return "HF_HUB_OFFLINE is set and the files are not in the hub cache"
    try:
        get_hf_file_metadata(hf_hub_url(HUB_ID, filename, repo_type="dataset"), timeout=PROBE_TIMEOUT)
    except (RepositoryNotFoundError, EntryNotFoundError) as exc:
        return f"the hub has no such file ({type(exc).__name__})"
    except Exception as exc:  # noqa: BLE001 - DNS, refused connection, timeout, proxy: the hub is out of reach
        return f"the Hugging Face hub is not reachable ({type(exc).__name__}) and the files are not in its cache"
    return None


def _first_sentence(text: str, limit: int = 200) -> str:
    """The first sentence of an exception's text, cut at a word (never mid-word) when longer than ``limit``."""
    sentence = re.split(r"(?<=[.!?])\s", " ".join(text.split()), maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[:limit].rsplit(" ", 1)[0] + " ..."


def _hub_files(name: str) -> tuple[list[Path], Path | None]:
    """The hub source's files through huggingface_hub: its cache first, then (after one request without retries
    says the hub answers) a download; one line in about a second when the hub is out of reach."""
    from huggingface_hub import hf_hub_download

    template_file, counterfactual_file = SOURCES[name]
    files = [f for f in (template_file, counterfactual_file) if f]
    try:
        paths = [Path(hf_hub_download(HUB_ID, f, repo_type="dataset", local_files_only=True)) for f in files]
    except Exception:  # noqa: BLE001 - not (all) cached: ask the hub
        problem = _hub_problem(files[0])
        if problem:
            raise ValueError(f"openings={name!r}: could not get it from the hub: {problem}; "
                             f"{_download_hint(files)}.") from None
        try:
            paths = [Path(hf_hub_download(HUB_ID, f, repo_type="dataset")) for f in files]
        except Exception as exc:  # noqa: BLE001 - lost mid-way, unknown file: the same advice
            reason = _first_sentence(str(exc)) or type(exc).__name__
            raise ValueError(f"openings={name!r}: could not get it from the hub ({type(exc).__name__}: {reason}); "
                             f"{_download_hint(files)}.") from None
    return paths[:1], (paths[1] if len(paths) > 1 else None)


def _local_files(path: Path, spec: str) -> tuple[list[Path], Path | None]:
    """A folder (every HONEST file in it) or one template CSV (with the race counterfactuals beside it)."""
    if path.is_dir():
        templates = [path / f for f in TEMPLATE_FILES if (path / f).is_file()]
        if not templates:
            raise ValueError(f"openings={spec!r}: the folder holds none of {', '.join(TEMPLATE_FILES)}; "
                             f"{_download_hint(list(TEMPLATE_FILES) + [COUNTERFACTUAL_FILE])}.")
        counterfactual = path / COUNTERFACTUAL_FILE
        return templates, counterfactual if counterfactual.is_file() else None
    counterfactual = path.parent / COUNTERFACTUAL_FILE
    pairs = path.name == SOURCES["honest-race"][0] and counterfactual.is_file()
    return [path], counterfactual if pairs else None


@lru_cache(maxsize=8)
def load_openings(spec: str) -> HonestOpenings:
    """HONEST openings from ``"honest-race"`` / ``"honest-religion"`` (the hub dataset, through
    ``huggingface_hub`` and its cache), ``"honest-fairgym"`` (shipped), a local folder holding the dataset's
    files, or one template CSV.

    Raises:
        ValueError: one line naming what is wrong and what to download (files, hub id) and where to put it:
            an unknown name or a missing path, the hub unreachable (offline), a file without the HONEST columns.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"openings={spec!r} must be 'honest-race', 'honest-religion', 'honest-fairgym' or a local "
                         "folder/CSV path.")
    if spec in SHIPPED:
        return read_openings([SHIPPED[spec]], None, spec)
    if spec in SOURCES:
        templates, counterfactual = _hub_files(spec)
        return read_openings(templates, counterfactual, spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise ValueError(f"openings={spec!r} is neither {' nor '.join(map(repr, SOURCES))} nor an existing folder "
                         f"or CSV file; {_download_hint(list(TEMPLATE_FILES) + [COUNTERFACTUAL_FILE])}.")
    templates, counterfactual = _local_files(path, spec)
    return read_openings(templates, counterfactual, spec)
