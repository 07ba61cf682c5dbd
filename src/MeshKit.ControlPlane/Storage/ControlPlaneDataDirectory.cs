using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.Storage;

/// <summary>The control service's data folder (CA keys, admin token, revocations), created readable by its owner only.</summary>
internal sealed class ControlPlaneDataDirectory
{
    public ControlPlaneDataDirectory(IOptions<ControlPlaneOptions> options)
    {
        var configured = options.Value.DataDirectory;
        Path = string.IsNullOrEmpty(configured)
            ? System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "MeshKit", "control-plane")
            : System.IO.Path.GetFullPath(configured);
        SecureFile.EnsureDirectory(Path);
    }

    public string Path { get; }
}
