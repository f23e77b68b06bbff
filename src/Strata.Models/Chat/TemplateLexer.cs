using System.Globalization;
using System.Text;

namespace Strata.Models.Chat;

internal enum TokenKind { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Op, End }

internal readonly record struct Token(TokenKind Kind, string Text, SourcePos Pos, object? Value = null)
{
    public bool IsName(string name) => Kind == TokenKind.Name && Text == name;

    public bool IsOp(string op) => Kind == TokenKind.Op && Text == op;

    public string Describe() => Kind switch
    {
        TokenKind.End => "end of template",
        TokenKind.VarEnd => "'}}'",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.Text => "text",
        _ => $"'{Text}'",
    };
}

/// <summary>
/// Splits a template into text and tag tokens. Whitespace follows transformers' environment
/// (<c>trim_blocks</c> and <c>lstrip_blocks</c> on, one trailing newline dropped) plus the <c>-</c> markers.
/// </summary>
internal sealed class TemplateLexer
{
    private static readonly IReadOnlyList<string> Operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}",
         ".", ",", ":", "|"];

    private readonly string _src;
    private readonly string? _origin;
    private readonly List<Token> _tokens = [];
    private readonly List<int> _lineStarts = [0];
    private int _pos;

    private TemplateLexer(string source, string? origin)
    {
        // As Jinja: newlines are normalised and one trailing newline is not part of the output.
        _src = source.Replace("\r\n", "\n", StringComparison.Ordinal);
        if (_src.EndsWith('\n')) _src = _src[..^1];
        _origin = origin;
        for (int i = 0; i < _src.Length; i++)
            if (_src[i] == '\n') _lineStarts.Add(i + 1);
    }

    public static List<Token> Tokenize(string source, string? origin)
    {
        var lexer = new TemplateLexer(source, origin);
        lexer.Run();
        return lexer._tokens;
    }

    private SourcePos PosOf(int index)
    {
        int line = _lineStarts.BinarySearch(index);
        if (line < 0) line = ~line - 1;
        return new SourcePos(line + 1, index - _lineStarts[line] + 1);
    }

    private ChatTemplateException Error(int index, string problem)
    {
        var p = PosOf(index);
        return new ChatTemplateException(ChatTemplateErrorKind.Syntax, problem, _origin, p.Line, p.Column);
    }

    private void Run()
    {
        bool stripNext = false;
        bool lineStart = true;
        while (_pos <= _src.Length)
        {
            int tag = FindTagStart(_pos);
            int textStart = _pos;
            string text = _src[_pos..(tag < 0 ? _src.Length : tag)];
            if (stripNext) text = text.TrimStart();
            if (tag >= 0) text = TrimBeforeTag(text, tag, lineStart);
            if (text.Length > 0) _tokens.Add(new Token(TokenKind.Text, text, PosOf(textStart)));
            if (tag < 0) break;
            (stripNext, lineStart) = _src[tag + 1] == '#' ? SkipComment(tag) : LexTag(tag);
        }
        _tokens.Add(new Token(TokenKind.End, "", PosOf(_src.Length)));
    }

    private int FindTagStart(int from)
    {
        for (int i = _src.IndexOf('{', from); i >= 0 && i + 1 < _src.Length; i = _src.IndexOf('{', i + 1))
            if (_src[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    /// <summary>Applies <c>{%-</c> (strip all whitespace before) or lstrip_blocks (strip the line's indent before a block or comment).</summary>
    private string TrimBeforeTag(string text, int tag, bool lineStart)
    {
        char marker = tag + 2 < _src.Length ? _src[tag + 2] : '\0';
        if (marker == '-') return text.TrimEnd();
        if (_src[tag + 1] == '{' || marker == '+') return text;
        int lineBegin = text.LastIndexOf('\n') + 1;
        if (lineBegin == 0 && !lineStart) return text;
        for (int i = lineBegin; i < text.Length; i++)
            if (text[i] is not (' ' or '\t')) return text;
        return text[..lineBegin];
    }

    private (bool StripNext, bool LineStart) SkipComment(int tag)
    {
        int close = _src.IndexOf("#}", tag + 2, StringComparison.Ordinal);
        if (close < 0) throw Error(tag, "unclosed comment: '{#' has no matching '#}'");
        _pos = close + 2;
        return AfterTag(_src[close - 1] == '-' && close - 1 > tag + 1, _src[close - 1] == '+');
    }

    /// <summary>What follows a tag: <c>-%}</c> strips the next text, trim_blocks eats one newline after a block.</summary>
    private (bool StripNext, bool LineStart) AfterTag(bool minus, bool plus)
    {
        if (minus) return (true, false);
        if (!plus && _pos < _src.Length && _src[_pos] == '\n')
        {
            _pos++;
            return (false, true);
        }
        return (false, false);
    }

    private (bool StripNext, bool LineStart) LexTag(int tag)
    {
        bool isVar = _src[tag + 1] == '{';
        _tokens.Add(new Token(isVar ? TokenKind.VarBegin : TokenKind.BlockBegin, _src.Substring(tag, 2), PosOf(tag)));
        _pos = tag + 2;
        if (_pos < _src.Length && _src[_pos] is '-' or '+') _pos++;
        int depth = 0;
        while (true)
        {
            while (_pos < _src.Length && char.IsWhiteSpace(_src[_pos])) _pos++;
            if (_pos >= _src.Length)
                throw Error(tag, $"unclosed tag: '{_src.Substring(tag, 2)}' has no matching '{(isVar ? "}}" : "%}")}'");
            if (depth == 0 && TryCloseTag(isVar) is { } close) return close;
            int start = _pos;
            char c = _src[_pos];
            if (c is '\'' or '"') _tokens.Add(new Token(TokenKind.String, "string", PosOf(start), LexString()));
            else if (char.IsAsciiDigit(c)) _tokens.Add(LexNumber());
            else if (char.IsLetter(c) || c == '_') _tokens.Add(LexName());
            else
            {
                string op = Operators.FirstOrDefault(o => string.CompareOrdinal(_src, _pos, o, 0, o.Length) == 0)
                    ?? throw Error(_pos, $"unexpected character '{c}'");
                if (op is "(" or "[" or "{") depth++;
                else if (op is ")" or "]" or "}") depth = Math.Max(0, depth - 1);
                _pos += op.Length;
                _tokens.Add(new Token(TokenKind.Op, op, PosOf(start)));
            }
        }
    }

    private (bool StripNext, bool LineStart)? TryCloseTag(bool isVar)
    {
        string close = isVar ? "}}" : "%}";
        bool minus = _src[_pos] == '-' && At(_pos + 1, close);
        bool plus = !isVar && _src[_pos] == '+' && At(_pos + 1, close);
        if (!minus && !plus && !At(_pos, close)) return null;
        var at = PosOf(_pos);
        _pos += close.Length + (minus || plus ? 1 : 0);
        _tokens.Add(new Token(isVar ? TokenKind.VarEnd : TokenKind.BlockEnd, close, at));
        // trim_blocks applies to block tags only; a variable tag keeps the newline after it.
        return isVar ? (minus, false) : AfterTag(minus, plus);
    }

    private bool At(int index, string s) => string.CompareOrdinal(_src, index, s, 0, s.Length) == 0;

    private Token LexName()
    {
        int start = _pos;
        while (_pos < _src.Length && (char.IsLetterOrDigit(_src[_pos]) || _src[_pos] == '_')) _pos++;
        return new Token(TokenKind.Name, _src[start.._pos], PosOf(start));
    }

    private Token LexNumber()
    {
        int start = _pos;
        SkipDigits();
        bool isFloat = false;
        // "a.0.1" is item access, not a float: only a digit after the dot makes a fraction.
        bool afterDot = _tokens.Count > 0 && _tokens[^1].IsOp(".");
        if (!afterDot && _pos + 1 < _src.Length && _src[_pos] == '.' && char.IsAsciiDigit(_src[_pos + 1]))
        {
            _pos++;
            SkipDigits();
            isFloat = true;
        }
        if (!afterDot && _pos < _src.Length && _src[_pos] is 'e' or 'E')
        {
            int save = _pos++;
            if (_pos < _src.Length && _src[_pos] is '+' or '-') _pos++;
            if (_pos < _src.Length && char.IsAsciiDigit(_src[_pos])) { SkipDigits(); isFloat = true; }
            else _pos = save;
        }
        string text = _src[start.._pos].Replace("_", "", StringComparison.Ordinal);
        if (isFloat)
            return new Token(TokenKind.Float, text, PosOf(start), double.Parse(text, CultureInfo.InvariantCulture));
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value))
            throw Error(start, $"integer literal '{text}' is too large");
        return new Token(TokenKind.Integer, text, PosOf(start), value);
    }

    private void SkipDigits()
    {
        while (_pos < _src.Length && (char.IsAsciiDigit(_src[_pos]) || (_src[_pos] == '_' && _pos + 1 < _src.Length && char.IsAsciiDigit(_src[_pos + 1]))))
            _pos++;
    }

    /// <summary>A quoted string with Python's escapes; an unknown escape keeps its backslash, as Python does.</summary>
    private string LexString()
    {
        int start = _pos;
        char quote = _src[_pos++];
        var sb = new StringBuilder();
        while (true)
        {
            if (_pos >= _src.Length) throw Error(start, "unterminated string literal");
            char c = _src[_pos++];
            if (c == quote) return sb.ToString();
            if (c != '\\' || _pos >= _src.Length)
            {
                sb.Append(c);
                continue;
            }
            char e = _src[_pos++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '0' when _pos >= _src.Length || !char.IsAsciiDigit(_src[_pos]): sb.Append('\0'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case '\\' or '\'' or '"': sb.Append(e); break;
                case '\n': break;
                case 'x': sb.Append(HexEscape(2, start)); break;
                case 'u': sb.Append(HexEscape(4, start)); break;
                case 'U': sb.Append(HexEscape(8, start)); break;
                default: sb.Append('\\').Append(e); break;
            }
        }
    }

    private string HexEscape(int digits, int stringStart)
    {
        if (_pos + digits > _src.Length
            || !int.TryParse(_src.AsSpan(_pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code)
            || code > 0x10FFFF || code is >= 0xD800 and <= 0xDFFF)
            throw Error(stringStart, "bad escape in string literal");
        _pos += digits;
        return char.ConvertFromUtf32(code);
    }
}
