namespace Strata.Models.Chat;

/// <summary>A 1-based place in the template source, carried by tokens and nodes for error messages.</summary>
internal readonly record struct SourcePos(int Line, int Column);

internal abstract record Stmt(SourcePos Pos);

internal sealed record TextStmt(SourcePos Pos, string Text) : Stmt(Pos);

internal sealed record OutputStmt(SourcePos Pos, Expr Value) : Stmt(Pos);

internal sealed record IfBranch(Expr Test, IReadOnlyList<Stmt> Body);

internal sealed record IfStmt(SourcePos Pos, IReadOnlyList<IfBranch> Branches, IReadOnlyList<Stmt> Else) : Stmt(Pos);

internal sealed record ForStmt(
    SourcePos Pos, IReadOnlyList<string> Targets, Expr Iterable, Expr? Filter, IReadOnlyList<Stmt> Body,
    IReadOnlyList<Stmt> Else) : Stmt(Pos);

/// <summary><c>{% set name = value %}</c>, or <c>{% set name.attribute = value %}</c> on a namespace.</summary>
internal sealed record SetStmt(SourcePos Pos, string Name, string? Attribute, Expr Value) : Stmt(Pos);

/// <summary><c>{% set name %}...{% endset %}</c>: the rendered body becomes the value.</summary>
internal sealed record SetBlockStmt(SourcePos Pos, string Name, IReadOnlyList<Stmt> Body) : Stmt(Pos);

internal sealed record MacroParam(string Name, Expr? Default);

internal sealed record MacroStmt(SourcePos Pos, string Name, IReadOnlyList<MacroParam> Params, IReadOnlyList<Stmt> Body)
    : Stmt(Pos);

internal sealed record LoopControlStmt(SourcePos Pos, bool IsBreak) : Stmt(Pos);

internal abstract record Expr(SourcePos Pos);

internal sealed record LiteralExpr(SourcePos Pos, object? Value) : Expr(Pos);

internal sealed record NameExpr(SourcePos Pos, string Name) : Expr(Pos);

/// <summary>A list literal; tuples are lists too, which only shows in how they print.</summary>
internal sealed record ListExpr(SourcePos Pos, IReadOnlyList<Expr> Items) : Expr(Pos);

internal sealed record DictExpr(SourcePos Pos, IReadOnlyList<(Expr Key, Expr Value)> Items) : Expr(Pos);

/// <summary><c>target.name</c>: an attribute first, then an item, as Jinja does.</summary>
internal sealed record AttrExpr(SourcePos Pos, Expr Target, string Name) : Expr(Pos);

/// <summary><c>target[key]</c>: an item first, then an attribute.</summary>
internal sealed record ItemExpr(SourcePos Pos, Expr Target, Expr Key) : Expr(Pos);

internal sealed record SliceExpr(SourcePos Pos, Expr Target, Expr? Start, Expr? Stop, Expr? Step) : Expr(Pos);

internal sealed record CallArgs(IReadOnlyList<Expr> Positional, IReadOnlyList<(string Name, Expr Value)> Named)
{
    public static readonly CallArgs None = new([], []);
}

internal sealed record CallExpr(SourcePos Pos, Expr Callee, CallArgs Args) : Expr(Pos);

internal sealed record FilterExpr(SourcePos Pos, Expr Target, string Name, CallArgs Args) : Expr(Pos);

internal sealed record TestExpr(SourcePos Pos, Expr Target, string Name, CallArgs Args, bool Negated) : Expr(Pos);

/// <summary>A prefix operator: <c>not</c>, <c>-</c> or <c>+</c>.</summary>
internal sealed record UnaryExpr(SourcePos Pos, string Op, Expr Operand) : Expr(Pos);

/// <summary>An infix operator, <c>and</c>/<c>or</c> (short-circuit), comparisons and <c>in</c>/<c>not in</c> included.</summary>
internal sealed record BinaryExpr(SourcePos Pos, string Op, Expr Left, Expr Right) : Expr(Pos);

/// <summary><c>then if test else otherwise</c>; a missing else gives an undefined value.</summary>
internal sealed record CondExpr(SourcePos Pos, Expr Test, Expr Then, Expr? Else) : Expr(Pos);
