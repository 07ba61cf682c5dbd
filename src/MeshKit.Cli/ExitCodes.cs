namespace MeshKit.Cli;

/// <summary>meshctl's exit codes; docs/meshctl.md lists them for scripts.</summary>
internal static class ExitCodes
{
    /// <summary>Done; nothing to report.</summary>
    public const int Ok = 0;

    /// <summary>Findings: validation errors, flagged workloads, a call <c>why</c> says would fail, a certificate that does not validate.</summary>
    public const int Findings = 1;

    /// <summary>Usage: unknown command or option, a missing or unreadable file, a missing setting.</summary>
    public const int Usage = 2;

    /// <summary>The control service (or Consul, or a host:port) could not be reached, or its certificate was not trusted.</summary>
    public const int Unreachable = 3;

    /// <summary>The control service refused the admin credential (401 or 403).</summary>
    public const int Unauthorized = 4;

    /// <summary>The change conflicts with the current state: an <c>If-Match</c> that no longer holds, a CA change refused.</summary>
    public const int Conflict = 5;

    /// <summary>A wait timed out (<c>ca rotate</c> waiting for workloads); rerunning continues where it stopped.</summary>
    public const int Timeout = 6;

    /// <summary>The operator declined a confirmation prompt.</summary>
    public const int Declined = 7;

    /// <summary>Something unexpected: the control service answered a 5xx or a body that does not parse, or meshctl failed (set MESHCTL_DEBUG=1 for details).</summary>
    public const int Unexpected = 8;
}

/// <summary>A failure that ends a command with a given exit code and a message for the operator (never a secret).</summary>
internal sealed class MeshctlException : Exception
{
    public MeshctlException(int exitCode, string message, Exception? inner = null)
        : base(message, inner)
    {
        ExitCode = exitCode;
    }

    public MeshctlException()
        : this(ExitCodes.Unexpected, "meshctl failed.")
    {
    }

    public MeshctlException(string message)
        : this(ExitCodes.Unexpected, message)
    {
    }

    public MeshctlException(string message, Exception innerException)
        : this(ExitCodes.Unexpected, message, innerException)
    {
    }

    public int ExitCode { get; }
}
