"""The page's JavaScript (``scratchcnn/static/*.js``), read as text: ES modules that share
nothing through globals, and no function over 60 lines.

A small scanner, not a JavaScript parser: it blanks out comments, strings and template-literal
text (keeping the code inside ``${...}``), then counts braces. A ``{`` opens a function body when
it follows ``=>`` or a parameter list ``(...)`` that is not an ``if``/``for``/``while``/``switch``/
``catch`` condition; the function runs from that line (or its parameter list's) to the matching
``}``. Arrow functions without braces (``x => x + 1``) are not measured. The checks of the scanner
itself come first, each on a snippet that must fail.
"""
import functools
import re
from pathlib import Path

import pytest

from scratchcnn.serve import routes

STATIC = Path(__file__).resolve().parent.parent / "scratchcnn" / "static"
MAX_FUNCTION_LINES = 60
NOT_FUNCTIONS = {"if", "for", "while", "switch", "catch", "with"}
IDENTIFIER = r"[A-Za-z_$][\w$]*"
REGEX_MAY_FOLLOW = set("(,=:[!&|?{};+-*%<>~^") | {""}


# ----------------------------------------------------------------------------- the scanner

@functools.lru_cache(maxsize=None)
def blank(source):
    """``(code, code_and_strings)``: the source with comments, strings and template-literal text
    replaced by spaces in ``code`` (comments only in ``code_and_strings``), newlines kept, so
    offsets and line numbers stay those of the source."""
    code, with_strings = list(source), list(source)
    templates = []                 # brace depth at each open ${ ... } of a template literal
    depth, i, n = 0, 0, len(source)

    def wipe(start, end, keep_strings=False):
        for k in range(start, end):
            if source[k] != "\n":
                code[k] = " "
                if not keep_strings:
                    with_strings[k] = " "

    while i < n:
        c, pair = source[i], source[i:i + 2]
        if pair == "//":
            end = source.find("\n", i)
            end = n if end < 0 else end
            wipe(i, end)
            i = end
        elif pair == "/*":
            end = source.index("*/", i) + 2
            wipe(i, end)
            i = end
        elif c in "'\"":
            end = i + 1
            while source[end] != c:
                end += 2 if source[end] == "\\" else 1
            wipe(i + 1, end, keep_strings=True)
            i = end + 1
        elif c == "`" or (c == "}" and templates and templates[-1] == depth):
            if c == "}":               # the end of a ${...}: back into the template's text
                templates.pop()
                code[i] = " "
            i = skip_template_text(source, i + 1, wipe, templates, depth)
        elif c == "/" and previous_significant(code, i) in REGEX_MAY_FOLLOW:
            close, end = skip_regex(source, i)
            wipe(i + 1, close, keep_strings=True)
            i = end
        else:
            depth += {"{": 1, "}": -1}.get(c, 0)
            i += 1
    return "".join(code), "".join(with_strings)


def skip_template_text(source, i, wipe, templates, depth):
    """From just inside a template literal's text: blank it up to its closing backtick (return
    the offset after it) or to a ``${`` (record it in ``templates``; return the offset after)."""
    start = i
    while True:
        if source[i] == "\\":
            i += 2
        elif source[i] == "`":
            wipe(start, i, keep_strings=True)
            return i + 1
        elif source.startswith("${", i):
            wipe(start, i + 2, keep_strings=True)
            templates.append(depth)
            return i + 2
        else:
            i += 1


def previous_significant(code, i):
    """The last character of code before offset i (spaces and comments skipped); "" at the start."""
    k = i - 1
    while k >= 0 and code[k].isspace():
        k -= 1
    return code[k] if k >= 0 else ""


def skip_regex(source, i):
    """``(close, end)`` of the regular-expression literal that starts at i: the offset of its
    closing slash, and the offset just after its flags."""
    k, in_class = i + 1, False
    while True:
        c = source[k]
        if c == "\\":
            k += 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        elif c == "/" and not in_class:
            break
        elif c == "\n":
            raise ValueError(f"unterminated regular expression at offset {i}")
        k += 1
    close, k = k, k + 1
    while k < len(source) and source[k].isalpha():
        k += 1
    return close, k


def matching(code, open_at):
    """The offset of the bracket that closes the one at ``open_at`` (forwards for ( [ {,
    backwards for ) ] })."""
    pairs = {"(": ")", "[": "]", "{": "}", ")": "(", "]": "[", "}": "{"}
    opener, closer = code[open_at], pairs[code[open_at]]
    step = 1 if opener in "([{" else -1
    depth, k = 0, open_at
    while True:
        if code[k] == opener:
            depth += 1
        elif code[k] == closer:
            depth -= 1
            if depth == 0:
                return k
        k += step


def functions(code):
    """``[(name, first line, last line)]`` of every function with a braced body (1-based lines)."""
    def line_of(offset):
        return code.count("\n", 0, offset) + 1

    found = []
    for match in re.finditer(r"\{", code):
        brace = match.start()
        before = code[:brace].rstrip()
        if before.endswith("=>"):
            head = before[:-2].rstrip()
            start = matching(code, len(head) - 1) if head.endswith(")") else re.search(IDENTIFIER + "$", head).start()
            name = arrow_name(code[:start])
        elif before.endswith(")"):
            start = matching(code, len(before) - 1)
            words = re.findall(IDENTIFIER, code[max(0, start - 40):start])
            if not words or words[-1] in NOT_FUNCTIONS or words[-2:] == ["for", "await"]:
                continue
            name = words[-1] if words[-1] != "function" else arrow_name(code[:start])
        else:
            continue
        found.append((name, line_of(start), line_of(matching(code, brace))))
    return found


def arrow_name(before):
    """What an anonymous function is called: ``const NAME =`` or ``NAME:`` just before it."""
    found = re.search(rf"({IDENTIFIER})\s*[:=]\s*(?:async\s*)?(?:function\s*)?$", before)
    return found.group(1) if found else "(anonymous)"


def long_functions(source, limit=MAX_FUNCTION_LINES):
    """``[(name, first line, lines)]`` of the functions over ``limit`` lines."""
    code, _ = blank(source)
    return [(name, first, last - first + 1) for name, first, last in functions(code)
            if last - first + 1 > limit]


# ----------------------------------------------------------------------------- modules

def imports_of(source):
    """``{name: module file}`` of ``import {a, b as c} from "./x.js"`` statements (by the name
    used in this file: c), and a list of import statements of any other form."""
    code, with_strings = blank(source)
    imported, odd = {}, []
    for statement in re.finditer(r"\bimport\b[^;]*;", with_strings):
        form = re.fullmatch(r"import\s*\{([^}]*)\}\s*from\s*[\"']\./([\w.]+)[\"'];", statement.group())
        if not form:
            odd.append(statement.group())
            continue
        for item in filter(None, (part.strip() for part in form.group(1).split(","))):
            original, _, local = item.partition(" as ")
            imported[(local or original).strip()] = (original.strip(), form.group(2))
    if len(re.findall(r"\bimport\b", code)) != len(re.findall(r"\bimport\b[^;]*;", with_strings)):
        odd.append("an import that is not a statement (import(...)?)")
    return imported, odd


def exports_of(source):
    code, _ = blank(source)
    names = set(re.findall(rf"\bexport\s+(?:async\s+)?(?:function\*?|const|let|var|class)\s+({IDENTIFIER})", code))
    for group in re.findall(r"\bexport\s*\{([^}]*)\}", code):
        names |= {item.split(" as ")[-1].strip() for item in group.split(",") if item.strip()}
    return names


def top_level_names(source):
    """Names a file declares outside any braces (its module scope)."""
    code, _ = blank(source)
    names, depth = set(), 0
    for token in re.finditer(rf"[{{}}]|\b(?:function\*?|const|let|var|class)\s+({IDENTIFIER})", code):
        if token.group() in "{}":
            depth += 1 if token.group() == "{" else -1
        elif depth == 0:
            names.add(token.group(1))
    return names


def declared_names(source):
    """Every name a file declares anywhere, parameters included (generously: a name used both
    as a local and as another file's top-level name counts as local)."""
    code, _ = blank(source)
    names = set(re.findall(rf"\b(?:function\*?|const|let|var|class)\s+({IDENTIFIER})", code))
    lists = re.findall(r"\b(?:const|let|var)\s*([\[{][^\]}]*[\]}])", code)    # destructuring
    lists += re.findall(r"\bcatch\s*\(([^()]*)\)", code)
    for params in re.finditer(r"\(([^()]*)\)\s*(?:=>|\{)", code):   # parameters, not conditions
        words = re.findall(IDENTIFIER, code[max(0, params.start() - 20):params.start()])
        if not words or words[-1] not in NOT_FUNCTIONS:
            lists.append(params.group(1))
            if words and code[:params.start()].rstrip().endswith(words[-1]):
                names.add(words[-1])                                # a method: name(...) {
    for names_list in lists:
        names |= set(re.findall(IDENTIFIER, names_list))
    return names | set(re.findall(rf"({IDENTIFIER})\s*=>", code))


def used_names(source):
    """Identifiers a file reads or writes, not property names (after ``.``) or object keys."""
    code, _ = blank(source)
    return set(re.findall(rf"(?<![\w$])(?:(?<=\.\.\.)|(?<!\.))({IDENTIFIER})(?![\w$])(?!\s*:(?!:))", code))


def global_writes(source):
    """Statements that put something on the global object."""
    code, _ = blank(source)
    writes = re.findall(r"\b(?:window|self)\s*\.\s*[\w$]+\s*(?:[-+*/|&?]{0,2}=)(?!=)", code)
    writes += re.findall(r"\b(?:window|self)\s*\[[^\]]*\]\s*=(?!=)", code)
    return writes + re.findall(r"\bglobalThis\b", code)


def module_problems(sources):
    """Problems of a set of modules ``{file name: source}``: imports that name no file or no
    export, other import forms, writes to the global object, and names used from another file's
    module scope without importing them."""
    problems = []
    tops = {name: top_level_names(source) for name, source in sources.items()}
    for name, source in sources.items():
        imported, odd = imports_of(source)
        problems += [f"{name}: unsupported import {statement!r}" for statement in odd]
        for local, (original, module) in imported.items():
            if module not in sources:
                problems.append(f"{name}: imports {original} from ./{module}, which does not exist")
            elif original not in exports_of(sources[module]):
                problems.append(f"{name}: imports {original} from ./{module}, which does not export it")
        problems += [f"{name}: writes to the global object: {write!r}" for write in global_writes(source)]
        own = declared_names(source) | set(imported)
        for other, names in tops.items():
            for shared in sorted((names & used_names(source)) - own) if other != name else ():
                problems.append(f"{name}: uses {shared}, declared in {other}, without importing it")
    return problems


def page_sources():
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(STATIC.glob("*.js"))}


# ----------------------------------------------------------------------------- the scanner can fail

def function_of(lines, head="function long(a, b) {"):
    """A function whose braces span ``lines`` lines, strings and comments with braces inside."""
    body = ['  const s = "}}}{", t = `${a + "}"} }`; // } {'] + ["  a += b;"] * (lines - 3)
    return "\n".join([head] + body + ["}"]) + "\n"


@pytest.mark.parametrize("head", ["function long(a, b) {", "const long = (a, b) => {",
                                  "const long = async function (a, b) {", "export async function long(a) {"])
def test_a_function_of_61_lines_is_caught_and_one_of_60_is_not(head):
    assert long_functions("// a comment {\n" + function_of(61, head)) == [("long", 2, 61)]
    assert long_functions(function_of(60, head)) == []


def test_methods_and_callbacks_are_functions_and_blocks_are_not():
    method = "const handlers = {\n  start(data) {\n" + "    x();\n" * 60 + "  },\n};\n"
    assert long_functions(method) == [("start", 2, 62)]
    callback = "items.forEach((item) => {\n" + "  x(item);\n" * 60 + "});\n"
    assert long_functions(callback) == [("(anonymous)", 1, 62)]
    blocks = "".join(f"{head} {{\n" + "  x();\n" * 70 + "}\n"
                     for head in ("if (a)", "for (const a of b)", "while (a)", "switch (a)", "try"))
    assert long_functions(blocks) == []


def test_regex_literals_are_skipped():
    assert blank("const r = /[}{]\\//g, x = a / b / c;")[0] == "const r = /      /g, x = a / b / c;"


def test_globals_are_caught():
    assert module_problems({"a.js": "window.model = null;\n"})
    assert module_problems({"a.js": "globalThis.x = 1;\n"})
    assert module_problems({"a.js": "window.addEventListener('resize', f);\nconst w = window.innerWidth;\n"}) == []


def test_a_name_shared_without_import_is_caught():
    sources = {"a.js": "export const model = {};\nfunction paint() {}\n",
               "b.js": "function show() { return model.layers; }\n"}
    assert module_problems(sources) == ["b.js: uses model, declared in a.js, without importing it"]
    sources["b.js"] = 'import {model} from "./a.js";\n' + sources["b.js"]
    assert module_problems(sources) == []
    sources["b.js"] += "paint();\n"
    assert module_problems(sources) == ["b.js: uses paint, declared in a.js, without importing it"]


def test_imports_must_name_an_export_of_an_existing_file():
    sources = {"a.js": "export function paint() {}\nconst hidden = 1;\n",
               "b.js": 'import {paint, hidden} from "./a.js";\nimport {x} from "./c.js";\n'}
    assert module_problems(sources) == ["b.js: imports hidden from ./a.js, which does not export it",
                                        "b.js: imports x from ./c.js, which does not exist"]


# ----------------------------------------------------------------------------- the page

def test_no_function_of_the_page_is_over_60_lines():
    found = {name: long_functions(source) for name, source in page_sources().items()}
    assert {name: long for name, long in found.items() if long} == {}
    assert sum(len(functions(blank(source)[0])) for source in page_sources().values()) > 100


def test_the_page_scripts_share_nothing_through_globals():
    assert module_problems(page_sources()) == []


def test_index_html_loads_main_js_as_a_module_and_nothing_else():
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="/static/main.js">']


def test_every_module_is_imported_from_main_js_and_served_as_javascript():
    sources, reached, todo = page_sources(), set(), ["main.js"]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo += [module for _, module in imports_of(sources[name])[0].values()]
    assert reached == set(sources), f"never imported: {set(sources) - reached}"
    assert set(routes.PAGE_SCRIPTS) == set(sources)
    files = routes.load_static_files()
    for name in sources:
        body, content_type = files[f"/static/{name}"]
        assert content_type.startswith("text/javascript") and body.decode("utf-8") == sources[name]
