namespace Strata.Models.Chat;

/// <summary>
/// One turn of a chat conversation as a chat template sees it: <c>message['role']</c> and <c>message['content']</c>.
/// </summary>
/// <param name="Role">The speaker: usually <c>system</c>, <c>user</c> or <c>assistant</c>; templates decide what they accept.</param>
/// <param name="Content">The text of the turn.</param>
public sealed record ChatMessage(string Role, string Content);
