namespace Strata.Engine.Generation;

/// <summary>One generated token and the text it completes.</summary>
/// <param name="TokenId">The sampled id (a stop id when it ended generation).</param>
/// <param name="Text">Text now safe to show: whole UTF-8 characters, with any possible stop-string prefix held back.</param>
/// <param name="FinishReason">null while generating; "stop" or "length" on the last chunk.</param>
public sealed record GenerationChunk(int TokenId, string Text, string? FinishReason);

/// <summary>A finished generation, as <c>strata generate --json</c> prints it.</summary>
/// <param name="PromptIds">The encoded prompt.</param>
/// <param name="GeneratedIds">Sampled ids; ends with the stop id when one ended generation.</param>
/// <param name="Text">The decoded continuation (no prompt, no stop string).</param>
/// <param name="StopReason">"stop" or "length".</param>
public sealed record GenerationResult(int[] PromptIds, int[] GeneratedIds, string Text, string StopReason);
