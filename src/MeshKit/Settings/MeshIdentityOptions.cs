namespace MeshKit;

/// <summary>When the workload certificate is renewed, and how failures are retried.</summary>
public sealed class MeshIdentityOptions
{
    /// <summary>Gets or sets the fraction of the certificate's lifetime after which it is renewed. Default 0.5.</summary>
    public double RenewalFraction { get; set; } = 0.5;

    /// <summary>Gets or sets the jitter around the renewal point, as a fraction of the lifetime. Default 0.1 (±10 %).</summary>
    public double RenewalJitter { get; set; } = 0.1;

    /// <summary>Gets or sets the first delay after a failed renewal; doubled on each failure. Default 1 second.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Gets or sets the longest delay between renewal attempts. Default 1 minute.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(1);
}
