using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace MeshKit.Testing.Consul;

/// <summary>
/// A small evaluator of Consul's <c>?filter=</c> language (go-bexpr) over an answer's JSON: selectors
/// (<c>Service.Meta.version</c>, <c>Service.Meta["spiffe-id"]</c>), <c>==</c>, <c>!=</c>, <c>contains</c>,
/// <c>not contains</c>, <c>in</c>, <c>not in</c>, <c>is empty</c>, <c>is not empty</c>, <c>matches</c>, <c>not matches</c>,
/// combined with <c>and</c>, <c>or</c>, <c>not</c> and parentheses.
/// </summary>
internal sealed class ConsulFilterExpression
{
    private readonly List<Token> _tokens;
    private int _position;

    private ConsulFilterExpression(List<Token> tokens)
    {
        _tokens = tokens;
    }

    private enum Kind
    {
        Word,
        String,
        Symbol,
        End,
    }

    /// <summary>Parses <paramref name="text"/>; on failure returns null and says why, as Consul's 400 does.</summary>
    public static Func<JsonObject, bool>? TryParse(string text, out string? error)
    {
        try
        {
            var parser = new ConsulFilterExpression(Tokenize(text));
            var expression = parser.ParseOr();
            parser.Expect(Kind.End, null);
            error = null;
            return expression;
        }
        catch (FormatException ex)
        {
            error = ex.Message;
            return null;
        }
    }

    private static List<Token> Tokenize(string text)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c is '"' or '`')
            {
                var builder = new StringBuilder();
                i++;
                while (i < text.Length && text[i] != c)
                {
                    if (c == '"' && text[i] == '\\' && i + 1 < text.Length)
                    {
                        i++;
                    }

                    builder.Append(text[i]);
                    i++;
                }

                if (i >= text.Length)
                {
                    throw new FormatException($"unterminated string at {i}");
                }

                i++;
                tokens.Add(new Token(Kind.String, builder.ToString()));
            }
            else if (c is '(' or ')' or '[' or ']' or '.')
            {
                tokens.Add(new Token(Kind.Symbol, c.ToString()));
                i++;
            }
            else if ((c is '=' or '!') && i + 1 < text.Length && text[i + 1] == '=')
            {
                tokens.Add(new Token(Kind.Symbol, text.Substring(i, 2)));
                i += 2;
            }
            else if (char.IsAsciiLetterOrDigit(c) || c == '_' || (c == '-' && i + 1 < text.Length && char.IsAsciiDigit(text[i + 1])))
            {
                // Selector names are ASCII letters, digits and underscores (map keys with other characters use ["key"]);
                // a leading '-' only starts a negative number.
                var start = i;
                i++;
                while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] == '_'))
                {
                    i++;
                }

                tokens.Add(new Token(Kind.Word, text[start..i]));
            }
            else
            {
                throw new FormatException($"unexpected character '{c}' at {i}");
            }
        }

        tokens.Add(new Token(Kind.End, string.Empty));
        return tokens;
    }

    private static JsonNode? Resolve(JsonObject root, List<string> path)
    {
        JsonNode? node = root;
        foreach (var part in path)
        {
            if (node is not JsonObject obj)
            {
                return null;
            }

            node = Json.Get(obj, part);
        }

        return node;
    }

    private static bool Contains(JsonNode? node, string value) => node switch
    {
        JsonArray array => array.Any(e => e is not null && Json.Text(e) == value),
        JsonObject obj => obj.ContainsKey(value),
        JsonValue v => Json.Text(v).Contains(value, StringComparison.Ordinal),
        _ => false,
    };

    private static bool IsEmpty(JsonNode? node) => node switch
    {
        null => true,
        JsonArray array => array.Count == 0,
        JsonObject obj => obj.Count == 0,
        _ => Json.Text(node).Length == 0,
    };

    private Token Peek(int ahead = 0) => _tokens[Math.Min(_position + ahead, _tokens.Count - 1)];

    private bool IsWord(string word, int ahead = 0) =>
        Peek(ahead).Kind == Kind.Word && string.Equals(Peek(ahead).Text, word, StringComparison.Ordinal);

    private Token Expect(Kind kind, string? text)
    {
        var token = Peek();
        if (token.Kind != kind || (text is not null && token.Text != text))
        {
            throw new FormatException($"expected {text ?? kind.ToString()} but found '{token.Text}'");
        }

        _position++;
        return token;
    }

    private Func<JsonObject, bool> ParseOr()
    {
        var left = ParseAnd();
        while (IsWord("or"))
        {
            _position++;
            var l = left;
            var r = ParseAnd();
            left = e => l(e) || r(e);
        }

        return left;
    }

    private Func<JsonObject, bool> ParseAnd()
    {
        var left = ParseUnary();
        while (IsWord("and"))
        {
            _position++;
            var l = left;
            var r = ParseUnary();
            left = e => l(e) && r(e);
        }

        return left;
    }

    private Func<JsonObject, bool> ParseUnary()
    {
        if (IsWord("not"))
        {
            _position++;
            var inner = ParseUnary();
            return e => !inner(e);
        }

        if (Peek().Kind == Kind.Symbol && Peek().Text == "(")
        {
            _position++;
            var inner = ParseOr();
            Expect(Kind.Symbol, ")");
            return inner;
        }

        return ParseMatch();
    }

    private Func<JsonObject, bool> ParseMatch()
    {
        // "value in Selector" / "value not in Selector"
        if (Peek().Kind == Kind.String || (Peek().Kind == Kind.Word && char.IsAsciiDigit(Peek().Text[0])))
        {
            var value = Expect(Peek().Kind, null).Text;
            var negate = false;
            if (IsWord("not"))
            {
                negate = true;
                _position++;
            }

            Expect(Kind.Word, "in");
            var path = ParseSelector();
            return e => Contains(Resolve(e, path), value) != negate;
        }

        var selector = ParseSelector();
        var token = Peek();
        if (token.Kind == Kind.Symbol && token.Text is "==" or "!=")
        {
            _position++;
            var value = ParseValue();
            var equal = token.Text == "==";
            return e => (Resolve(e, selector) is { } node && node is not JsonObject and not JsonArray && Json.Text(node) == value) == equal;
        }

        if (IsWord("is"))
        {
            _position++;
            var negate = false;
            if (IsWord("not"))
            {
                negate = true;
                _position++;
            }

            Expect(Kind.Word, "empty");
            return e => IsEmpty(Resolve(e, selector)) != negate;
        }

        var not = false;
        if (IsWord("not"))
        {
            not = true;
            _position++;
        }

        if (IsWord("contains"))
        {
            _position++;
            var value = ParseValue();
            return e => Contains(Resolve(e, selector), value) != not;
        }

        if (IsWord("matches"))
        {
            _position++;
            var regex = new Regex(ParseValue(), RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            return e => (Resolve(e, selector) is JsonValue v && regex.IsMatch(Json.Text(v))) != not;
        }

        throw new FormatException($"expected an operator after the selector but found '{Peek().Text}'");
    }

    private List<string> ParseSelector()
    {
        var path = new List<string> { Expect(Kind.Word, null).Text };
        while (true)
        {
            if (Peek().Kind == Kind.Symbol && Peek().Text == ".")
            {
                _position++;
                path.Add(Expect(Kind.Word, null).Text);
            }
            else if (Peek().Kind == Kind.Symbol && Peek().Text == "[")
            {
                _position++;
                path.Add(Expect(Kind.String, null).Text);
                Expect(Kind.Symbol, "]");
            }
            else
            {
                return path;
            }
        }
    }

    private string ParseValue()
    {
        var token = Peek();
        if (token.Kind is Kind.String or Kind.Word)
        {
            _position++;
            return token.Text;
        }

        throw new FormatException($"expected a value but found '{token.Text}'");
    }

    private readonly record struct Token(Kind Kind, string Text);
}
