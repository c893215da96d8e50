#!/usr/bin/env python3
"""Writes the Octostache vectors as seed inputs for the template_evaluate fuzz target.

Each vector becomes `template \\0 name \\0 value ...` (the target's input layout) in
corpus/template_evaluate/, named by its SHA-1 as libFuzzer names corpus files. Run from fuzz/.
"""

import hashlib
import json
import pathlib

VECTORS = pathlib.Path("../crates/cuttle-template/tests/data/octostache/public.json")
CORPUS = pathlib.Path("corpus/template_evaluate")


def main() -> None:
    CORPUS.mkdir(parents=True, exist_ok=True)
    n_written = 0
    for vector in json.loads(VECTORS.read_text(encoding="utf-8")):
        parts = [vector["template"]]
        for name, value in list(vector.get("variables", {}).items())[:8]:
            parts += [name, value]
        data = "\0".join(parts).encode("utf-8")
        (CORPUS / hashlib.sha1(data).hexdigest()).write_bytes(data)
        n_written += 1
    print(f"{n_written} seeds in {CORPUS}")


if __name__ == "__main__":
    main()
