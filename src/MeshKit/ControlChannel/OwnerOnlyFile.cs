namespace MeshKit.ControlChannel;

/// <summary>
/// Files the workload keeps for itself: a folder only its owner can enter (0700), files only its owner can read and write
/// (0600), replaced atomically (a temporary file renamed over the old one), so a crash never leaves half a file behind.
/// The control service has its own copy of this rule; the data plane does not depend on it.
/// </summary>
internal static class OwnerOnlyFile
{
    private const UnixFileMode OwnerOnlyFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode WritableByOthers = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    /// <summary>Creates <paramref name="path"/> (and its parents) when missing; the folder itself is created with mode 0700.</summary>
    public static void EnsureDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            return;
        }

        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, OwnerOnlyDirectoryMode);
        }
    }

    /// <summary>Writes <paramref name="contents"/> to <paramref name="path"/> with mode 0600, replacing any file there atomically.</summary>
    public static void WriteAllText(string path, string contents)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        EnsureDirectory(directory);

        // Created with its final mode, so the file is never readable or writable by others, not even briefly.
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnlyFileMode;
        }

        try
        {
            using (var stream = new FileStream(temporary, options))
            using (var writer = new StreamWriter(stream))
            {
                writer.Write(contents);
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>
    /// Says why another user could have written <paramref name="path"/> (the file or its folder is group- or
    /// world-writable), or <see langword="null"/> when only its owner could. Always <see langword="null"/> on Windows, where
    /// the per-user folders are private by their ACLs.
    /// </summary>
    public static string? WhyWritableByOthers(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return null;
        }

        var fileMode = File.GetUnixFileMode(path);
        if ((fileMode & WritableByOthers) != 0)
        {
            return $"the file is writable by other users (mode {Octal(fileMode)}; expected 0600)";
        }

        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var directoryMode = File.GetUnixFileMode(directory);
        if ((directoryMode & WritableByOthers) != 0)
        {
            return $"its folder '{directory}' is writable by other users (mode {Octal(directoryMode)}; expected 0700)";
        }

        return null;
    }

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0x1FF, 8);
}
