"""Renders the package's models with Jinja2, the engine dbt-core itself uses, for test/runner/jinja2-parity.test.ts.

Reads a job (JSON) on stdin and prints {"<model>|<incremental>": {"sql": ...} or {"error": ...}} on stdout.
The job carries what the TypeScript runner resolved for the same build (refs, sources, var layers,
adapter.dispatch targets, `this`), so the only thing compared is how the two engines render the templates.
The context is built the way dbt-core builds it:
- an Environment with autoescape off and the `do` and `loopcontrols` extensions (dbt's get_environment);
- every macro is a callable that runs the Jinja macro and turns `return(x)` (dbt raises MacroReturn) into
  the call's value, else gives the rendered text (dbt's MacroGenerator);
- `run_started_at` is a timezone-aware UTC datetime (dbt's tracking user), `execute` is true;
- package macros shadow the built-in `dbt` ones of the same name, which stay reachable as `dbt.<name>`.
"""

import datetime
import json
import sys

import jinja2
import jinja2.nodes


class MacroReturn(Exception):
    def __init__(self, value):
        super().__init__()
        self.value = value


class CompilerError(Exception):
    pass


def do_return(value):
    raise MacroReturn(value)


def raise_compiler_error(msg, *args, **kwargs):
    raise CompilerError(str(msg))


class MacroCallable:
    """dbt's MacroGenerator: the macro's value is what it passes to return(), else its rendered text."""

    def __init__(self, registry, name):
        self.registry = registry
        self.name = name

    def __call__(self, *args, **kwargs):
        macro = self.registry[self.name]
        try:
            return macro(*args, **kwargs)
        except MacroReturn as ret:
            return ret.value


class ModelRelation:
    """`this`: the model being rendered, also inside macros (their templates were made before any model)."""

    def __init__(self, state):
        self.state = state

    def __str__(self):
        return self.state["this"]


class Namespace:
    """Attribute access to a dict of callables, like dbt's `dbt` and `exceptions` namespaces."""

    def __init__(self, members):
        self._members = members

    def __getattr__(self, name):
        try:
            return self._members[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def main():
    job = json.load(sys.stdin)
    env = jinja2.Environment(autoescape=False, extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])

    builtin = {}
    package = {}
    state = {"incremental": False, "this": None}

    def var(name, *default):
        for layer in job["var_layers"]:
            if isinstance(layer, dict) and name in layer:
                return layer[name]
        if default:
            return default[0]
        raise CompilerError('the var "%s" is required but not set' % name)

    def ref(*args, **kwargs):
        name = args[1] if len(args) >= 2 else args[0]
        return job["refs"][name]

    def source(source_name, table_name):
        return job["sources"]["%s.%s" % (source_name, table_name)]

    def config(*args, **kwargs):
        return ""

    def dispatch(macro_name=None, macro_namespace=None, **kwargs):
        key = "%s|%s" % (macro_namespace or "", macro_name)
        if key not in job["dispatch"]:
            raise CompilerError("adapter.dispatch(%r, %r) has no implementation" % (macro_name, macro_namespace))
        registry_name, macro = job["dispatch"][key]
        return MacroCallable(builtin if registry_name == "dbt" else package, macro)

    globals_ = env.globals
    globals_.update(
        {
            "ref": ref,
            "source": source,
            "var": var,
            "config": config,
            "is_incremental": lambda: state["incremental"],
            "return": do_return,
            "log": lambda *a, **k: "",
            "exceptions": Namespace({"raise_compiler_error": raise_compiler_error, "warn": lambda *a, **k: ""}),
            "adapter": Namespace({"dispatch": dispatch}),
            "target": job["target"],
            "project_name": job["project_name"],
            "execute": True,
            "this": ModelRelation(state),
            "run_started_at": datetime.datetime.fromisoformat(job["run_started_at"].replace("Z", "+00:00")),
            "tojson": json.dumps,
            "fromjson": json.loads,
            "zip": lambda *ls: [list(t) for t in zip(*ls)],
        }
    )

    # One template per macro, as dbt parses each macro block into its own node: a macro then reaches every
    # other macro, even one of its own file, through the context (the callables below), never directly. The
    # callables are in the globals before any macro template is made, since a template copies them.
    def macro_nodes(source_text):
        return [n for n in env.parse(source_text).body if isinstance(n, jinja2.nodes.Macro)]

    builtin_nodes = macro_nodes(job["builtin_macros"])
    package_nodes = [n for text in job["package_macros"] for n in macro_nodes(text)]
    globals_["dbt"] = Namespace({n.name: MacroCallable(builtin, n.name) for n in builtin_nodes})
    for n in builtin_nodes:
        globals_[n.name] = MacroCallable(builtin, n.name)
    for n in package_nodes:
        globals_[n.name] = MacroCallable(package, n.name)
    for nodes_, into in [(builtin_nodes, builtin), (package_nodes, package)]:
        for node in nodes_:
            code = env.compile(jinja2.nodes.Template([node], lineno=1))
            module = env.template_class.from_code(env, code, env.make_globals(None)).module
            into[node.name] = getattr(module, node.name)

    out = {}
    for model in job["models"]:
        state["incremental"] = model["incremental"]
        state["this"] = model["this"]
        key = "%s|%s" % (model["name"], "true" if model["incremental"] else "false")
        try:
            out[key] = {"sql": env.from_string(model["raw"]).render()}
        except Exception as exc:  # the test reports which model failed, and how
            out[key] = {"error": "%s: %s" % (type(exc).__name__, exc)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
