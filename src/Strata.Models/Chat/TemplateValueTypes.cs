namespace Strata.Models.Chat;

// Runtime values are plain CLR objects: null (Python None), bool, long, double, string, List<object?> (lists and
// tuples, never changed once built) and OrderedDictionary<string, object?> (dicts), plus the types below.

/// <summary>
/// Jinja's lenient undefined: prints as empty, is false, iterates as empty, but fails on attribute access,
/// arithmetic and calls, naming what was undefined.
/// </summary>
internal sealed class Undefined(string hint)
{
    /// <summary>Why it is undefined, in Jinja's words, for example <c>'tools' is undefined</c>.</summary>
    public string Hint { get; } = hint;
}

/// <summary>The mutable object <c>namespace(...)</c> returns, so loops can carry state out of their scope.</summary>
internal sealed class Namespace
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>The <c>loop</c> variable inside a for loop.</summary>
internal sealed class LoopInfo(IReadOnlyList<object?> items, int index)
{
    public int Index0 { get; } = index;

    public object? Get(string name) => name switch
    {
        "index" => (long)Index0 + 1,
        "index0" => (long)Index0,
        "revindex" => (long)(items.Count - Index0),
        "revindex0" => (long)(items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == items.Count - 1,
        "length" => (long)items.Count,
        "depth" => 1L,
        "depth0" => 0L,
        "previtem" => Index0 > 0 ? items[Index0 - 1] : new Undefined("there is no previous item"),
        "nextitem" => Index0 + 1 < items.Count ? items[Index0 + 1] : new Undefined("there is no next item"),
        "cycle" => new BoundMethod(this, "cycle"),
        _ => new Undefined($"'loop' has no attribute '{name}'"),
    };
}

/// <summary>A method looked up on a value (<c>content.strip</c>), called later with its arguments.</summary>
internal sealed record BoundMethod(object Receiver, string Name);

/// <summary>A global function: <c>raise_exception</c>, <c>namespace</c>, <c>range</c>, <c>strftime_now</c>, <c>dict</c>.</summary>
internal sealed record BuiltinFunction(string Name);

/// <summary>A macro defined by the template, with the scope it was defined in.</summary>
internal sealed record MacroValue(MacroStmt Macro, TemplateScope Closure);

/// <summary>Evaluated call arguments.</summary>
internal sealed record ArgValues(IReadOnlyList<object?> Positional, IReadOnlyDictionary<string, object?> Named)
{
    /// <summary>Argument <paramref name="index"/> by position, else by <paramref name="name"/>, else the fallback.</summary>
    public object? Get(int index, string name, object? fallback = null) =>
        index < Positional.Count ? Positional[index] : Named.TryGetValue(name, out var v) ? v : fallback;

    public bool Has(int index, string name) => index < Positional.Count || Named.ContainsKey(name);
}

/// <summary>Variables visible at one point: the template's top level, a loop body or a macro call.</summary>
internal sealed class TemplateScope(TemplateScope? parent)
{
    private readonly Dictionary<string, object?> _vars = new(StringComparer.Ordinal);

    public TemplateScope? Parent { get; } = parent;

    public bool TryGet(string name, out object? value)
    {
        for (var scope = this; scope is not null; scope = scope.Parent)
            if (scope._vars.TryGetValue(name, out value)) return true;
        value = null;
        return false;
    }

    /// <summary>Assignments stay in the innermost scope: a <c>set</c> in a loop does not leak, as in Jinja.</summary>
    public void Set(string name, object? value) => _vars[name] = value;
}

/// <summary>A failure inside value operations; the evaluator adds the template position and makes it public.</summary>
internal sealed class TemplateRuntimeError(string problem, ChatTemplateErrorKind kind = ChatTemplateErrorKind.Render)
    : Exception(problem)
{
    public ChatTemplateErrorKind Kind { get; } = kind;
}
