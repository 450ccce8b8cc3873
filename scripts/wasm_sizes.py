#!/usr/bin/env python3
"""How much of the browser half's code belongs to one page's module.

Reads a wasm built with v0 symbol names (generic arguments included, so a
Leptos view or a serde deserialiser instantiated for a page's types names
that page) and sums each function's code size by the app modules its name
mentions: one page module, several, only the shared ones (components, shell,
auth…), or none (the libraries). The figures say what a per-page split of
the module could take off a page's download (docs/benchmarks.md).

    CARGO_TARGET_DIR=/tmp/v0-target \\
    RUSTFLAGS='--cfg erase_components --cfg getrandom_backend="wasm_js" -C symbol-mangling-version=v0' \\
      cargo build -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate --profile wasm-release
    python3 scripts/wasm_sizes.py /tmp/v0-target/wasm32-unknown-unknown/wasm-release/app.wasm
"""
import collections
import re
import sys

SHARED = {"components", "shell", "csrf", "auth", "names", "list_view", "error", "hydrate", "api"}


def leb(b, i):
    result = shift = 0
    while True:
        x = b[i]
        i += 1
        result |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return result, i


def functions(data):
    """(name, code size) of every function the module defines."""
    i, imported, sizes, names = 8, 0, [], {}
    while i < len(data):
        section = data[i]
        size, i = leb(data, i + 1)
        end = i + size
        if section == 2:  # imports: functions among them shift the indices
            n, j = leb(data, i)
            for _ in range(n):
                for _ in range(2):
                    length, j = leb(data, j)
                    j += length
                kind = data[j]
                j += 1
                if kind == 0:
                    _, j = leb(data, j)
                    imported += 1
                elif kind == 1:
                    flags, j = leb(data, j + 1)
                    _, j = leb(data, j)
                    if flags & 1:
                        _, j = leb(data, j)
                elif kind == 2:
                    flags, j = leb(data, j)
                    _, j = leb(data, j)
                    if flags & 1:
                        _, j = leb(data, j)
                elif kind == 3:
                    j += 2
        elif section == 10:  # code
            n, j = leb(data, i)
            for _ in range(n):
                body, j = leb(data, j)
                sizes.append(body)
                j += body
        elif section == 0:  # custom: the name section
            length, j = leb(data, i)
            if data[j:j + length] == b"name":
                j += length
                while j < end:
                    sub = data[j]
                    sub_size, j = leb(data, j + 1)
                    if sub == 1:
                        n, k = leb(data, j)
                        for _ in range(n):
                            index, k = leb(data, k)
                            length, k = leb(data, k)
                            names[index] = data[k:k + length].decode("utf8", "replace")
                            k += length
                    j += sub_size
        i = end
    return [(names.get(index + imported, ""), size) for index, size in enumerate(sizes)]


def main(path):
    funcs = functions(open(path, "rb").read())
    total = sum(size for _, size in funcs)
    module = re.compile(r"3app(\d+)([A-Za-z_0-9]+)")
    kinds, pages = collections.Counter(), collections.Counter()
    for name, size in funcs:
        mentioned = {m.group(2)[: int(m.group(1))] for m in module.finditer(name)}
        own = mentioned - SHARED
        if len(own) == 1:
            kinds["one page module"] += size
            pages[own.pop()] += size
        elif own:
            kinds["several page modules"] += size
        elif mentioned:
            kinds["the app's shared modules"] += size
        else:
            kinds["libraries only (Leptos, serde, std...)"] += size
    print(f"{len(funcs)} functions, {total} bytes of code")
    for kind, size in kinds.most_common():
        print(f"{kind:42s} {size:9d} {100 * size / total:5.1f} %")
    for page, size in pages.most_common():
        print(f"    {page:38s} {size:9d} {100 * size / total:5.1f} %")


if __name__ == "__main__":
    main(sys.argv[1])
