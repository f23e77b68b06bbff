using System.Collections.Concurrent;
using Strata.Contracts;
using Strata.Grains.Stages;
using Strata.Models;
using Strata.Models.Chat;
using Strata.Models.Tokenization;

namespace Strata.Grains;

/// <summary>Tokenizers and chat templates of deployed packages, loaded once per silo.</summary>
public sealed class TokenizerCache(StageHost host)
{
    private readonly ConcurrentDictionary<string, Lazy<ITokenizer>> _byPath = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<ChatTemplate>> _templates = new(StringComparer.Ordinal);

    /// <summary>The tokenizer of the package at <paramref name="packagePath"/> (resolved against the model store).</summary>
    /// <exception cref="StrataException">invalid_request: a package file is missing or malformed; the message names
    /// it relative to the model store.</exception>
    public ITokenizer Get(string packagePath)
    {
        string resolved = host.Resolve(packagePath);
        try
        {
            return _byPath.GetOrAdd(resolved, p => new Lazy<ITokenizer>(() =>
            {
                using var model = ModelLoader.Open(p, verify: false);
                return TokenizerLoader.Load(model.TokenizerDirectory);
            })).Value;
        }
        catch (Exception e) when (e is ModelFormatException or IOException or UnauthorizedAccessException)
        {
            _byPath.TryRemove(resolved, out _); // not cached: the files may be fixed
            throw Unreadable(packagePath, e);
        }
    }

    /// <summary><paramref name="message"/> without the silo's folders (model store paths).</summary>
    public string Scrub(string message) => host.Store.Scrub(message);

    // The message reaches clients through the session: it must not name the silo's folders.
    private StrataException Unreadable(string packagePath, Exception e) =>
        new(ErrorCodes.InvalidRequest, $"the tokenizer files of package '{packagePath}' cannot be read: {host.Store.Scrub(e is UnauthorizedAccessException ? "permission denied: " + e.Message : e.Message)}");

    /// <summary>
    /// Renders <paramref name="messages"/> with the chat template of the package at <paramref name="packagePath"/>,
    /// ending with the header of the assistant's reply. The template's <c>bos_token</c> renders as nothing: the
    /// session puts BOS in front of a conversation's first turn itself. Errors are <see cref="StrataException"/>s
    /// (invalid_request) that name the model and what the template said, never a path on the silo.
    /// </summary>
    public string RenderChat(string packagePath, string model, IReadOnlyList<ChatTurn> messages)
    {
        if (messages.Count == 0) throw new StrataException(ErrorCodes.InvalidRequest, "messages must not be empty");
        string resolved = host.Resolve(packagePath);
        try
        {
            var template = _templates.GetOrAdd(resolved, p => new Lazy<ChatTemplate>(() =>
            {
                using var package = ModelLoader.Open(p, verify: false);
                return ChatTemplate.FromTokenizerConfig(package.TokenizerDirectory);
            })).Value;
            return template.Render(messages.Select(m => new ChatMessage(m.Role, m.Content)).ToList(),
                new ChatTemplateOptions { AddGenerationPrompt = true, BosToken = "" });
        }
        catch (Exception e) when (e is ModelFormatException or IOException or UnauthorizedAccessException)
        {
            _templates.TryRemove(resolved, out _);
            throw Unreadable(packagePath, e);
        }
        catch (ChatTemplateException e)
        {
            string where = e.Line is int line ? $" (template line {line}, column {e.Column})" : "";
            string what = e.Kind == ChatTemplateErrorKind.Configuration
                ? $"has no usable chat template ({e.Problem}); it takes plain completions (/v1/completions) only"
                : $"chat template failed: {e.Problem}{where}";
            throw new StrataException(ErrorCodes.InvalidRequest, $"model '{model}' {what}");
        }
    }
}
