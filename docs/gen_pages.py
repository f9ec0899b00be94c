"""Write the generated pages into the site being built (mkdocs.yml: the ``gen-files`` plugin runs this script).

What each page is made from is in ``docs/docgen/``; this script only hands the pages to mkdocs-gen-files, with
each one's "edit" link pointing at the source it was made from.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).resolve().parent))

import docgen  # noqa: E402

for path, content in docgen.generated_pages().items():
    with mkdocs_gen_files.open(path, "wb" if isinstance(content, bytes) else "w") as handle:
        handle.write(content)

for path, content in docgen.filled_pages().items():
    with mkdocs_gen_files.open(path, "w") as handle:
        handle.write(content)
