using System.Collections.Frozen;
namespace Strata.Models.Chat;

/// <summary>Expressions, with Jinja's precedence from loosest to tightest:
/// conditional, or, and, not, comparisons and in, + -, ~, * / // %, **, unary - +, then postfix, filters and tests.</summary>
internal sealed partial class TemplateParser
{
    private static readonly FrozenSet<string> CompareOps =
        new[] { "==", "!=", "<", "<=", ">", ">=" }.ToFrozenSet(StringComparer.Ordinal);

    private Expr ParseExpression(bool allowConditional = true)
    {
        Enter(Current);
        var expr = ParseOr();
        while (allowConditional && Current.IsName("if"))
        {
            var at = Next();
            var test = ParseOr();
            Expr? otherwise = SkipName("else") ? ParseExpression() : null;
            expr = new CondExpr(at.Pos, test, expr, otherwise);
        }
        _depth--;
        return expr;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (Current.IsName("or"))
            left = new BinaryExpr(Next().Pos, "or", left, ParseAnd());
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (Current.IsName("and"))
            left = new BinaryExpr(Next().Pos, "and", left, ParseNot());
        return left;
    }

    private Expr ParseNot()
    {
        if (!Current.IsName("not")) return ParseCompare();
        var at = Next();
        Enter(at);
        var operand = ParseNot();
        _depth--;
        return new UnaryExpr(at.Pos, "not", operand);
    }

    /// <summary>Comparisons chain as in Python: <c>a &lt; b &lt; c</c> is <c>a &lt; b and b &lt; c</c>.</summary>
    private Expr ParseCompare()
    {
        var left = ParseAdditive();
        Expr? result = null;
        while (true)
        {
            var at = Current;
            string op;
            if (at.Kind == TokenKind.Op && CompareOps.Contains(at.Text)) op = at.Text;
            else if (at.IsName("in")) op = "in";
            else if (at.IsName("not") && _tokens[_index + 1].IsName("in")) { op = "not in"; _index++; }
            else break;
            _index++;
            var right = ParseAdditive();
            var compare = new BinaryExpr(at.Pos, op, left, right);
            result = result is null ? compare : new BinaryExpr(at.Pos, "and", result, compare);
            left = right;
        }
        return result ?? left;
    }

    private Expr ParseAdditive()
    {
        var left = ParseConcat();
        while (Current.IsOp("+") || Current.IsOp("-"))
        {
            var op = Next();
            left = new BinaryExpr(op.Pos, op.Text, left, ParseConcat());
        }
        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMultiplicative();
        while (Current.IsOp("~"))
            left = new BinaryExpr(Next().Pos, "~", left, ParseMultiplicative());
        return left;
    }

    private Expr ParseMultiplicative()
    {
        var left = ParsePower();
        while (Current.IsOp("*") || Current.IsOp("/") || Current.IsOp("//") || Current.IsOp("%"))
        {
            var op = Next();
            left = new BinaryExpr(op.Pos, op.Text, left, ParsePower());
        }
        return left;
    }

    private Expr ParsePower()
    {
        var left = ParseUnary(withFilters: true);
        while (Current.IsOp("**"))
            left = new BinaryExpr(Next().Pos, "**", left, ParseUnary(withFilters: true));
        return left;
    }

    /// <summary>As Jinja: <c>-x|f</c> applies the filter to <c>-x</c>, and filters bind tighter than binary operators.</summary>
    private Expr ParseUnary(bool withFilters)
    {
        Enter(Current);
        Expr expr;
        if (Current.IsOp("-") || Current.IsOp("+"))
        {
            var op = Next();
            expr = new UnaryExpr(op.Pos, op.Text, ParseUnary(withFilters: false));
        }
        else
        {
            expr = ParsePostfix(ParsePrimary());
        }
        if (withFilters) expr = ParseFiltersAndTests(expr);
        _depth--;
        return expr;
    }

    private Expr ParsePrimary()
    {
        var token = Next();
        switch (token.Kind)
        {
            case TokenKind.Name:
                return token.Text switch
                {
                    "true" or "True" => new LiteralExpr(token.Pos, true),
                    "false" or "False" => new LiteralExpr(token.Pos, false),
                    "none" or "None" => new LiteralExpr(token.Pos, null),
                    _ => new NameExpr(token.Pos, token.Text),
                };
            case TokenKind.String:
                // Adjacent literals concatenate, as in Python.
                string text = (string)token.Value!;
                while (Current.Kind == TokenKind.String) text += (string)Next().Value!;
                return new LiteralExpr(token.Pos, text);
            case TokenKind.Integer or TokenKind.Float:
                return new LiteralExpr(token.Pos, token.Value);
            case TokenKind.Op when token.Text == "(":
                return ParseParenthesised(token);
            case TokenKind.Op when token.Text == "[":
                return new ListExpr(token.Pos, ParseSequence("]"));
            case TokenKind.Op when token.Text == "{":
                return ParseDict(token);
            default:
                throw Error(token, $"unexpected {token.Describe()}");
        }
    }

    private Expr ParseParenthesised(Token open)
    {
        if (SkipOp(")")) return new ListExpr(open.Pos, []);
        var first = ParseExpression();
        if (SkipOp(")")) return first;
        ExpectOp(",");
        var items = new List<Expr> { first };
        items.AddRange(ParseSequence(")"));
        return new ListExpr(open.Pos, items);
    }

    /// <summary>Comma-separated expressions up to <paramref name="close"/>, a trailing comma allowed.</summary>
    private List<Expr> ParseSequence(string close)
    {
        var items = new List<Expr>();
        while (!SkipOp(close))
        {
            if (items.Count > 0)
            {
                ExpectOp(",");
                if (SkipOp(close)) break;
            }
            items.Add(ParseExpression());
        }
        return items;
    }

    private DictExpr ParseDict(Token open)
    {
        var items = new List<(Expr, Expr)>();
        while (!SkipOp("}"))
        {
            if (items.Count > 0)
            {
                ExpectOp(",");
                if (SkipOp("}")) break;
            }
            var key = ParseExpression();
            ExpectOp(":");
            items.Add((key, ParseExpression()));
        }
        return new DictExpr(open.Pos, items);
    }

    private Expr ParsePostfix(Expr expr)
    {
        while (true)
        {
            var at = Current;
            if (SkipOp("."))
            {
                var member = Next();
                expr = member.Kind switch
                {
                    TokenKind.Name => new AttrExpr(at.Pos, expr, member.Text),
                    TokenKind.Integer => new ItemExpr(at.Pos, expr, new LiteralExpr(member.Pos, member.Value)),
                    _ => throw Error(member, $"expected an attribute name after '.', found {member.Describe()}"),
                };
            }
            else if (SkipOp("[")) expr = ParseSubscript(at, expr);
            else if (SkipOp("(")) expr = new CallExpr(expr.Pos, expr, ParseCallArgs());
            else return expr;
        }
    }

    private Expr ParseSubscript(Token open, Expr target)
    {
        Expr? start = Current.IsOp(":") ? null : ParseExpression();
        if (SkipOp("]")) return new ItemExpr(open.Pos, target, start!);
        ExpectOp(":");
        Expr? stop = Current.IsOp(":") || Current.IsOp("]") ? null : ParseExpression();
        Expr? step = null;
        if (SkipOp(":") && !Current.IsOp("]")) step = ParseExpression();
        ExpectOp("]");
        return new SliceExpr(open.Pos, target, start, stop, step);
    }

    /// <summary>Arguments after an opening parenthesis: positional ones, then <c>name=value</c> ones.</summary>
    private CallArgs ParseCallArgs()
    {
        var positional = new List<Expr>();
        var named = new List<(string, Expr)>();
        while (!SkipOp(")"))
        {
            if (positional.Count + named.Count > 0)
            {
                ExpectOp(",");
                if (SkipOp(")")) break;
            }
            if (Current.Kind == TokenKind.Name && _tokens[_index + 1].IsOp("="))
            {
                string name = Next().Text;
                _index++;
                named.Add((name, ParseExpression()));
            }
            else
            {
                if (named.Count > 0) throw Error(Current, "positional argument follows keyword argument");
                positional.Add(ParseExpression());
            }
        }
        return new CallArgs(positional, named);
    }

    private Expr ParseFiltersAndTests(Expr expr)
    {
        while (true)
        {
            var at = Current;
            if (SkipOp("|"))
            {
                var name = ExpectName();
                if (!TemplateFilters.IsFilter(name.Text)) throw Error(name, $"unknown filter '{name.Text}'");
                var args = SkipOp("(") ? ParseCallArgs() : CallArgs.None;
                expr = new FilterExpr(name.Pos, expr, name.Text, args);
            }
            else if (SkipName("is"))
            {
                bool negated = SkipName("not");
                var name = Current.Kind == TokenKind.Name ? Next() : throw Error(Current, $"expected a test name, found {Current.Describe()}");
                if (!TemplateFilters.IsTest(name.Text)) throw Error(name, $"unknown test '{name.Text}'");
                expr = new TestExpr(at.Pos, expr, name.Text, ParseTestArgs(), negated);
            }
            else if (SkipOp("(")) expr = new CallExpr(at.Pos, expr, ParseCallArgs());
            else return expr;
        }
    }

    /// <summary>A test takes parenthesised arguments or one bare argument: <c>x is divisibleby 3</c>.</summary>
    private CallArgs ParseTestArgs()
    {
        if (SkipOp("(")) return ParseCallArgs();
        var t = Current;
        bool startsArgument = t.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float
            || t.IsOp("(") || t.IsOp("[") || t.IsOp("{");
        if (!startsArgument || t.IsName("else") || t.IsName("or") || t.IsName("and")) return CallArgs.None;
        return new CallArgs([ParsePostfix(ParsePrimary())], []);
    }
}
