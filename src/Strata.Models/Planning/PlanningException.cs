namespace Strata.Models.Planning;

/// <summary>
/// The model cannot be placed on the silos as asked: not enough memory, more stages than layers, and the like.
/// The message says what is needed, what the cluster offers and what to change. It is an operator error:
/// tools print the message without a stack trace.
/// </summary>
public sealed class PlanningException : Exception
{
    /// <summary>Creates the exception with an actionable message.</summary>
    public PlanningException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with an actionable message and the exception that caused it.</summary>
    public PlanningException(string message, Exception? inner) : base(message, inner)
    {
    }
}
