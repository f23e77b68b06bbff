using System.Runtime.CompilerServices;
using System.Text;

namespace Strata.Models.Chat;

/// <summary>
/// Walks the parsed template. One instance renders once: it carries the step count and call depth that bound a
/// render, so a template that loops or recurses without end fails with a typed error instead of hanging.
/// </summary>
internal sealed class TemplateEvaluator(string? origin, int maxLength, TimeProvider time)
{
    /// <summary>Nested evaluations (expressions inside macro calls inside loops); Jinja's own limit is Python's recursion limit.</summary>
    private const int MaxDepth = 400;

    /// <summary>Statements, loop iterations and calls per render; real chat templates use a few per message.</summary>
    private const long MaxSteps = 2_000_000;

    private enum Flow { Normal, Break, Continue }

    private int _depth;
    private long _steps;

    public string Render(IReadOnlyList<Stmt> body, TemplateScope globals)
    {
        var output = new StringBuilder();
        Exec(body, new TemplateScope(globals), output);
        return output.ToString();
    }

    private ChatTemplateException Error(ChatTemplateErrorKind kind, SourcePos pos, string problem) =>
        new(kind, problem, origin, pos.Line, pos.Column);

    private void Enter()
    {
        if (++_depth > MaxDepth || !RuntimeHelpers.TryEnsureSufficientExecutionStack())
            throw new TemplateRuntimeError($"the template nests or recurses deeper than {MaxDepth} levels", ChatTemplateErrorKind.LimitExceeded);
    }

    private void Step()
    {
        if (++_steps > MaxSteps)
            throw new TemplateRuntimeError($"the template ran more than {MaxSteps} steps", ChatTemplateErrorKind.LimitExceeded);
    }

    private Flow Exec(IReadOnlyList<Stmt> body, TemplateScope scope, StringBuilder output)
    {
        foreach (var stmt in body)
        {
            Flow flow;
            try
            {
                Enter();
                Step();
                flow = ExecStatement(stmt, scope, output);
            }
            catch (TemplateRuntimeError e)
            {
                throw Error(e.Kind, stmt.Pos, e.Message);
            }
            finally
            {
                _depth--;
            }
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    private Flow ExecStatement(Stmt stmt, TemplateScope scope, StringBuilder output)
    {
        switch (stmt)
        {
            case TextStmt t:
                Append(output, t.Text);
                return Flow.Normal;
            case OutputStmt o:
                Append(output, TemplateValues.ToStr(Eval(o.Value, scope)));
                return Flow.Normal;
            case IfStmt i:
                foreach (var branch in i.Branches)
                    if (TemplateValues.IsTrue(Eval(branch.Test, scope))) return Exec(branch.Body, scope, output);
                return Exec(i.Else, scope, output);
            case ForStmt f:
                return ExecFor(f, scope, output);
            case SetStmt s:
                Assign(s, Eval(s.Value, scope), scope);
                return Flow.Normal;
            case SetBlockStmt b:
                var captured = new StringBuilder();
                Exec(b.Body, scope, captured);
                scope.Set(b.Name, captured.ToString());
                return Flow.Normal;
            case MacroStmt m:
                scope.Set(m.Name, new MacroValue(m, scope));
                return Flow.Normal;
            case LoopControlStmt c:
                return c.IsBreak ? Flow.Break : Flow.Continue;
            default:
                throw new TemplateRuntimeError($"unsupported statement {stmt.GetType().Name}");
        }
    }

    private void Append(StringBuilder output, string text)
    {
        if ((long)output.Length + text.Length > maxLength)
            throw new TemplateRuntimeError($"the output grew past the limit of {maxLength} characters", ChatTemplateErrorKind.LimitExceeded);
        output.Append(text);
    }

    private static void Assign(SetStmt s, object? value, TemplateScope scope)
    {
        if (s.Attribute is null)
        {
            scope.Set(s.Name, value);
            return;
        }
        if (!scope.TryGet(s.Name, out var target) || target is not Namespace ns)
            throw new TemplateRuntimeError($"cannot assign attribute '{s.Attribute}' on '{s.Name}': it is not a namespace()");
        ns.Attributes[s.Attribute] = value;
    }

    private Flow ExecFor(ForStmt f, TemplateScope scope, StringBuilder output)
    {
        var items = TemplateValues.Iterate(Eval(f.Iterable, scope));
        var loopScope = new TemplateScope(scope);
        if (f.Filter is not null)
        {
            var kept = new List<object?>();
            foreach (var item in items)
            {
                Step();
                Bind(f.Targets, item, loopScope);
                if (TemplateValues.IsTrue(Eval(f.Filter, loopScope))) kept.Add(item);
            }
            items = kept;
        }
        if (items.Count == 0) return Exec(f.Else, loopScope, output);
        for (int i = 0; i < items.Count; i++)
        {
            Step();
            Bind(f.Targets, items[i], loopScope);
            loopScope.Set("loop", new LoopInfo(items, i));
            if (Exec(f.Body, loopScope, output) == Flow.Break) break;
        }
        return Flow.Normal;
    }

    private static void Bind(IReadOnlyList<string> targets, object? item, TemplateScope scope)
    {
        if (targets.Count == 1)
        {
            scope.Set(targets[0], item);
            return;
        }
        var parts = item is List<object?> or string ? TemplateValues.Iterate(item) : null;
        if (parts is null || parts.Count != targets.Count)
            throw new TemplateRuntimeError($"cannot unpack {TemplateValues.TypeName(item)} into {targets.Count} loop variables");
        for (int i = 0; i < targets.Count; i++) scope.Set(targets[i], parts[i]);
    }

    private object? Eval(Expr expr, TemplateScope scope)
    {
        try
        {
            Enter();
            return EvalCore(expr, scope);
        }
        catch (TemplateRuntimeError e)
        {
            throw Error(e.Kind, expr.Pos, e.Message);
        }
        finally
        {
            _depth--;
        }
    }

    private object? EvalCore(Expr expr, TemplateScope scope) => expr switch
    {
        LiteralExpr l => l.Value,
        NameExpr n => scope.TryGet(n.Name, out var v) ? v : new Undefined($"'{n.Name}' is undefined"),
        ListExpr l => l.Items.Select(i => Eval(i, scope)).ToList(),
        DictExpr d => BuildDict(d, scope),
        AttrExpr a => TemplateOperators.GetAttr(Eval(a.Target, scope), a.Name),
        ItemExpr i => TemplateOperators.GetItem(Eval(i.Target, scope), Eval(i.Key, scope)),
        SliceExpr s => TemplateOperators.Slice(Eval(s.Target, scope), Opt(s.Start, scope), Opt(s.Stop, scope), Opt(s.Step, scope)),
        CallExpr c => Call(c, scope),
        FilterExpr f => TemplateFilters.Apply(f.Name, Eval(f.Target, scope), EvalArgs(f.Args, scope), maxLength),
        TestExpr t => TemplateFilters.RunTest(t.Name, Eval(t.Target, scope), EvalArgs(t.Args, scope)) != t.Negated,
        UnaryExpr u => Unary(u.Op, Eval(u.Operand, scope)),
        BinaryExpr b => Binary(b, scope),
        CondExpr c => TemplateValues.IsTrue(Eval(c.Test, scope)) ? Eval(c.Then, scope)
            : c.Else is null ? new Undefined("the conditional expression had no else branch") : Eval(c.Else, scope),
        _ => throw new TemplateRuntimeError($"unsupported expression {expr.GetType().Name}"),
    };

    private object? Opt(Expr? expr, TemplateScope scope) => expr is null ? null : Eval(expr, scope);

    private OrderedDictionary<string, object?> BuildDict(DictExpr d, TemplateScope scope)
    {
        var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in d.Items)
        {
            var key = Eval(k, scope);
            dict[key as string ?? TemplateValues.ToStr(key)] = Eval(v, scope);
        }
        return dict;
    }

    private ArgValues EvalArgs(CallArgs args, TemplateScope scope)
    {
        var positional = args.Positional.Select(a => Eval(a, scope)).ToList();
        var named = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in args.Named) named[name] = Eval(value, scope);
        return new ArgValues(positional, named);
    }

    private object? Binary(BinaryExpr b, TemplateScope scope)
    {
        var left = Eval(b.Left, scope);
        return b.Op switch
        {
            "and" => TemplateValues.IsTrue(left) ? Eval(b.Right, scope) : left,
            "or" => TemplateValues.IsTrue(left) ? left : Eval(b.Right, scope),
            _ => TemplateOperators.Binary(b.Op, left, Eval(b.Right, scope), maxLength),
        };
    }

    private static object? Unary(string op, object? value)
    {
        if (op == "not") return !TemplateValues.IsTrue(value);
        TemplateOperators.FailIfUndefined(value);
        return (op, value) switch
        {
            ("-", long l) when l != long.MinValue => -l,
            ("-", double d) => -d,
            ("-", bool b) => b ? -1L : 0L,
            ("+", long or double) => value,
            ("+", bool b) => b ? 1L : 0L,
            _ => throw new TemplateRuntimeError($"bad operand type for unary {op}: '{TemplateValues.TypeName(value)}'"),
        };
    }

    private object? Call(CallExpr c, TemplateScope scope)
    {
        var callee = Eval(c.Callee, scope);
        var args = EvalArgs(c.Args, scope);
        Step();
        return callee switch
        {
            BuiltinFunction f => TemplateFunctions.CallGlobal(f.Name, args, time),
            BoundMethod m => TemplateFunctions.CallMethod(m, args, maxLength),
            MacroValue m => CallMacro(m, args),
            Undefined u => throw new TemplateRuntimeError(u.Hint),
            _ => throw new TemplateRuntimeError($"'{TemplateValues.TypeName(callee)}' object is not callable"),
        };
    }

    private string CallMacro(MacroValue macro, ArgValues args)
    {
        var m = macro.Macro;
        if (args.Positional.Count > m.Params.Count)
            throw new TemplateRuntimeError($"macro '{m.Name}' takes {m.Params.Count} arguments, {args.Positional.Count} given");
        foreach (string name in args.Named.Keys)
            if (!m.Params.Any(p => p.Name == name))
                throw new TemplateRuntimeError($"macro '{m.Name}' has no parameter '{name}'");
        var scope = new TemplateScope(macro.Closure);
        for (int i = 0; i < m.Params.Count; i++)
        {
            var p = m.Params[i];
            object? value = i < args.Positional.Count ? args.Positional[i]
                : args.Named.TryGetValue(p.Name, out var v) ? v
                : p.Default is not null ? Eval(p.Default, scope)
                : new Undefined($"parameter '{p.Name}' of macro '{m.Name}' was not given");
            scope.Set(p.Name, value);
        }
        var output = new StringBuilder();
        Exec(m.Body, scope, output);
        return output.ToString();
    }
}
