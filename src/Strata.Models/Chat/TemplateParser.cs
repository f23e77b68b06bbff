namespace Strata.Models.Chat;

/// <summary>
/// Recursive-descent parser for the Jinja subset chat templates use. Statement tags live here, expressions in
/// <c>TemplateParser.Expressions.cs</c>. Unknown tags, filters and tests are syntax errors, as in Jinja.
/// </summary>
internal sealed partial class TemplateParser
{
    /// <summary>Nesting bound for tags and expressions, so hostile input cannot overflow the stack.</summary>
    private const int MaxDepth = 100;

    private readonly List<Token> _tokens;
    private readonly string? _origin;
    private int _index;
    private int _depth;
    private int _loopDepth;

    private TemplateParser(List<Token> tokens, string? origin)
    {
        _tokens = tokens;
        _origin = origin;
    }

    public static IReadOnlyList<Stmt> Parse(string source, string? origin)
    {
        var parser = new TemplateParser(TemplateLexer.Tokenize(source, origin), origin);
        var (body, _) = parser.ParseBody();
        return body;
    }

    private Token Current => _tokens[_index];

    private Token Next() => _tokens[_index++];

    private ChatTemplateException Error(Token at, string problem) =>
        new(ChatTemplateErrorKind.Syntax, problem, _origin, at.Pos.Line, at.Pos.Column);

    private Token ExpectName()
    {
        if (Current.Kind != TokenKind.Name) throw Error(Current, $"expected a name, found {Current.Describe()}");
        return Next();
    }

    private void ExpectName(string name)
    {
        if (!Current.IsName(name)) throw Error(Current, $"expected '{name}', found {Current.Describe()}");
        _index++;
    }

    private void ExpectOp(string op)
    {
        if (!Current.IsOp(op)) throw Error(Current, $"expected '{op}', found {Current.Describe()}");
        _index++;
    }

    private bool SkipOp(string op)
    {
        if (!Current.IsOp(op)) return false;
        _index++;
        return true;
    }

    private bool SkipName(string name)
    {
        if (!Current.IsName(name)) return false;
        _index++;
        return true;
    }

    private void ExpectBlockEnd()
    {
        if (Current.Kind != TokenKind.BlockEnd) throw Error(Current, $"expected '%}}', found {Current.Describe()}");
        _index++;
    }

    private void Enter(Token at)
    {
        if (++_depth > MaxDepth) throw Error(at, $"template nests deeper than {MaxDepth} levels");
    }

    /// <summary>
    /// Parses statements until one of <paramref name="ends"/> (a tag name such as <c>endif</c>) opens a block; returns
    /// the body and that tag name, with the stream positioned after the name. No ends means: until the template ends.
    /// </summary>
    private (List<Stmt> Body, string? End) ParseBody(string? opener = null, Token openedAt = default, params string[] ends)
    {
        Enter(Current);
        var body = new List<Stmt>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.Text:
                    _index++;
                    body.Add(new TextStmt(token.Pos, token.Text));
                    break;
                case TokenKind.VarBegin:
                    _index++;
                    var value = ParseExpression();
                    if (Current.Kind != TokenKind.VarEnd) throw Error(Current, $"expected '}}}}', found {Current.Describe()}");
                    _index++;
                    body.Add(new OutputStmt(token.Pos, value));
                    break;
                case TokenKind.BlockBegin:
                    _index++;
                    var name = ExpectName();
                    if (ends.Contains(name.Text))
                    {
                        _depth--;
                        return (body, name.Text);
                    }
                    body.Add(ParseStatement(name));
                    break;
                case TokenKind.End when ends.Length == 0:
                    _depth--;
                    return (body, null);
                default:
                    throw Error(token, opener is null
                        ? $"unexpected {token.Describe()}"
                        : $"'{opener}' opened at line {openedAt.Pos.Line}, column {openedAt.Pos.Column} is not closed: expected '{string.Join("' or '", ends)}'");
            }
        }
    }

    private Stmt ParseStatement(Token name)
    {
        switch (name.Text)
        {
            case "if": return ParseIf(name);
            case "for": return ParseFor(name);
            case "set": return ParseSet(name);
            case "macro": return ParseMacro(name);
            case "break" or "continue":
                if (_loopDepth == 0) throw Error(name, $"'{name.Text}' outside a loop");
                ExpectBlockEnd();
                return new LoopControlStmt(name.Pos, name.Text == "break");
            case "generation":
                // transformers' {% generation %} marks assistant text for masks; for a prompt it is transparent.
                ExpectBlockEnd();
                var (body, _) = ParseBody("generation", name, "endgeneration");
                ExpectBlockEnd();
                return new IfStmt(name.Pos, [new IfBranch(new LiteralExpr(name.Pos, true), body)], []);
            case "elif" or "else" or "endif" or "endfor" or "endset" or "endmacro" or "endgeneration":
                throw Error(name, $"unexpected '{name.Text}': no open block it could close");
            default:
                throw Error(name, $"unknown tag '{name.Text}'");
        }
    }

    private IfStmt ParseIf(Token name)
    {
        var branches = new List<IfBranch>();
        List<Stmt> otherwise = [];
        var test = ParseExpression();
        while (true)
        {
            ExpectBlockEnd();
            var (body, end) = ParseBody("if", name, "elif", "else", "endif");
            branches.Add(new IfBranch(test, body));
            if (end == "elif")
            {
                test = ParseExpression();
                continue;
            }
            if (end == "else")
            {
                ExpectBlockEnd();
                (otherwise, _) = ParseBody("if", name, "endif");
            }
            ExpectBlockEnd();
            return new IfStmt(name.Pos, branches, otherwise);
        }
    }

    private ForStmt ParseFor(Token name)
    {
        var targets = new List<string> { ExpectName().Text };
        while (SkipOp(",")) targets.Add(ExpectName().Text);
        ExpectName("in");
        // The iterable is no conditional expression: a following 'if' filters the loop.
        var iterable = ParseExpression(allowConditional: false);
        Expr? filter = SkipName("if") ? ParseExpression() : null;
        if (Current.IsName("recursive")) throw Error(Current, "recursive loops are not supported");
        ExpectBlockEnd();
        _loopDepth++;
        var (body, end) = ParseBody("for", name, "else", "endfor");
        _loopDepth--;
        List<Stmt> otherwise = [];
        if (end == "else")
        {
            ExpectBlockEnd();
            (otherwise, _) = ParseBody("for", name, "endfor");
        }
        ExpectBlockEnd();
        return new ForStmt(name.Pos, targets, iterable, filter, body, otherwise);
    }

    private Stmt ParseSet(Token name)
    {
        string target = ExpectName().Text;
        string? attribute = SkipOp(".") ? ExpectName().Text : null;
        if (attribute is null && Current.Kind == TokenKind.BlockEnd)
        {
            _index++;
            var (body, _) = ParseBody("set", name, "endset");
            ExpectBlockEnd();
            return new SetBlockStmt(name.Pos, target, body);
        }
        if (Current.IsOp(",")) throw Error(Current, "unpacking in 'set' is not supported");
        ExpectOp("=");
        var value = ParseExpression();
        ExpectBlockEnd();
        return new SetStmt(name.Pos, target, attribute, value);
    }

    private MacroStmt ParseMacro(Token name)
    {
        string macroName = ExpectName().Text;
        var parameters = new List<MacroParam>();
        ExpectOp("(");
        while (!SkipOp(")"))
        {
            if (parameters.Count > 0) ExpectOp(",");
            if (SkipOp(")")) break;
            string param = ExpectName().Text;
            parameters.Add(new MacroParam(param, SkipOp("=") ? ParseExpression() : null));
        }
        ExpectBlockEnd();
        int outerLoops = _loopDepth;
        _loopDepth = 0;
        var (body, _) = ParseBody("macro", name, "endmacro");
        _loopDepth = outerLoops;
        ExpectBlockEnd();
        return new MacroStmt(name.Pos, macroName, parameters, body);
    }
}
