using System.Text.Json;

namespace MeshKit.Hosting.Aspire;

/// <summary>
/// Finds the installed control-service tool (<c>meshkit-control</c>, package MeshKit.ControlPlane) for
/// <c>AddMeshControlPlane(name)</c>, in this order: <see cref="global::Aspire.Hosting.MeshControlPlaneSettings.ToolPath"/>
/// (or the AppHost setting <c>MeshKit:ControlPlane:ToolPath</c>); a local tool manifest (<c>.config/dotnet-tools.json</c>)
/// in the AppHost's folder or above that lists MeshKit.ControlPlane, run with <c>dotnet tool run</c>; the command on
/// <c>PATH</c> or in <c>~/.dotnet/tools</c> (a global install).
/// </summary>
internal static class MeshControlPlaneTool
{
    public const string CommandName = "meshkit-control";
    public const string PackageId = "MeshKit.ControlPlane";
    public const string ToolPathKey = "MeshKit:ControlPlane:ToolPath";

    /// <summary>Finds the tool, or throws saying how to install it.</summary>
    /// <param name="configuredPath">The configured executable (or <c>.dll</c>), if any.</param>
    /// <param name="appHostDirectory">The AppHost's folder, where the search for a tool manifest starts.</param>
    /// <param name="path">The <c>PATH</c> to search.</param>
    /// <param name="home">The user's home folder (for <c>~/.dotnet/tools</c>).</param>
    /// <returns>The command to run, the arguments that come before the control service's own, and the working directory.</returns>
    public static ToolCommand Find(string? configuredPath, string appHostDirectory, string? path, string? home)
    {
        if (!string.IsNullOrWhiteSpace(configuredPath))
        {
            var full = Path.GetFullPath(configuredPath, appHostDirectory);
            if (!File.Exists(full))
            {
                throw new InvalidOperationException($"The MeshKit control service tool was configured at '{full}' (MeshControlPlaneSettings.ToolPath or {ToolPathKey}), but there is no such file.");
            }

            return full.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
                ? new ToolCommand("dotnet", [full], appHostDirectory, $"{full} (configured)")
                : new ToolCommand(full, [], appHostDirectory, $"{full} (configured)");
        }

        if (FindManifest(appHostDirectory) is { } manifestRoot)
        {
            return new ToolCommand("dotnet", ["tool", "run", CommandName], manifestRoot, $"dotnet tool run {CommandName} (local tool manifest in {manifestRoot})");
        }

        var names = OperatingSystem.IsWindows() ? new[] { CommandName + ".exe", CommandName + ".cmd" } : [CommandName];
        var folders = (path ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (!string.IsNullOrEmpty(home))
        {
            folders.Add(Path.Combine(home, ".dotnet", "tools"));
        }

        foreach (var folder in folders)
        {
            foreach (var name in names)
            {
                var candidate = Path.Combine(folder, name);
                if (File.Exists(candidate))
                {
                    return new ToolCommand(Path.GetFullPath(candidate), [], appHostDirectory, $"{Path.GetFullPath(candidate)} (PATH)");
                }
            }
        }

        throw new InvalidOperationException(
            $"AddMeshControlPlane() runs the MeshKit control service tool '{CommandName}', and it is not installed. Install it next to the AppHost " +
            $"('dotnet new tool-manifest' then 'dotnet tool install {PackageId}'), or for the user ('dotnet tool install -g {PackageId}'), " +
            $"or set MeshControlPlaneSettings.ToolPath ({ToolPathKey}) to its executable. AddMeshControlPlaneContainer() runs its container image " +
            "instead; inside the MeshKit repository, AddMeshControlPlane<Projects.MeshKit_ControlPlane>() runs the project.");
    }

    /// <summary>Gets the folder whose <c>.config/dotnet-tools.json</c> (or <c>dotnet-tools.json</c>) lists the tool, searching upwards.</summary>
    private static string? FindManifest(string start)
    {
        for (var folder = new DirectoryInfo(Path.GetFullPath(start)); folder is not null; folder = folder.Parent)
        {
            foreach (var candidate in new[] { Path.Combine(folder.FullName, ".config", "dotnet-tools.json"), Path.Combine(folder.FullName, "dotnet-tools.json") })
            {
                if (File.Exists(candidate) && ListsTool(candidate))
                {
                    return folder.FullName;
                }
            }
        }

        return null;
    }

    private static bool ListsTool(string manifest)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(manifest), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            return document.RootElement.TryGetProperty("tools", out var tools)
                && tools.ValueKind == JsonValueKind.Object
                && tools.EnumerateObject().Any(t => string.Equals(t.Name, PackageId, StringComparison.OrdinalIgnoreCase));
        }
        catch (JsonException)
        {
            // A manifest that does not parse is dotnet's to report; it lists nothing for us.
            return false;
        }
    }
}

/// <summary>How to start the control-service tool.</summary>
/// <param name="Command">The executable.</param>
/// <param name="Arguments">The arguments before the control service's own.</param>
/// <param name="WorkingDirectory">The working directory (a local tool runs from within its manifest's folder).</param>
/// <param name="Description">Where it was found, for errors and logs.</param>
internal sealed record ToolCommand(string Command, IReadOnlyList<string> Arguments, string WorkingDirectory, string Description);

/// <summary>The AppHost's user on Linux, as <c>uid:gid</c> for <c>--user</c>.</summary>
internal static class LinuxUser
{
    /// <summary>Reads the real uid and gid from <c>/proc/self/status</c>; null when it cannot.</summary>
    public static string? Current()
    {
        try
        {
            string? uid = null;
            string? gid = null;
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("Uid:", StringComparison.Ordinal))
                {
                    uid = line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1];
                }
                else if (line.StartsWith("Gid:", StringComparison.Ordinal))
                {
                    gid = line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1];
                }
            }

            return uid is not null && gid is not null ? $"{uid}:{gid}" : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
