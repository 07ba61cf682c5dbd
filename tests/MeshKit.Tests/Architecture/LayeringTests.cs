using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace MeshKit.Tests.Architecture;

/// <summary>
/// The floor plan of the data plane, held by a test: the folders of <c>src/MeshKit</c> are layers with one direction
/// (docs/architecture.md draws them), and the packages depend on each other in one direction too.
/// </summary>
[Trait("Area", "Architecture")]
public sealed partial class LayeringTests
{
    /// <summary>Each folder's layer, bottom first: a folder may use folders of lower layers only, never its own or higher.</summary>
    private static readonly Dictionary<string, int> Layers = new(StringComparer.Ordinal)
    {
        ["Settings"] = 0,
        ["Deadlines"] = 0,
        ["Identity"] = 0,
        ["Telemetry"] = 0,
        ["Policy"] = 1,
        ["Discovery"] = 1,
        ["Transport"] = 2,
        ["Routing"] = 3,
        ["Resilience"] = 3,
        ["Balancing"] = 3,
        ["Server"] = 4,
        ["Authorization"] = 5,
        ["ControlChannel"] = 6,
        ["Health"] = 6,
        ["Client"] = 7,
        ["Hosting"] = 8,
    };

    [Fact]
    public void Every_folder_of_the_data_plane_has_a_layer()
    {
        var folders = Directory.GetDirectories(Source("src/MeshKit")).Select(Path.GetFileName).Where(f => f is not ("bin" or "obj")).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Layers.Keys.Order(StringComparer.Ordinal), folders);
        Assert.Empty(Directory.GetFiles(Source("src/MeshKit"), "*.cs"));
    }

    [Fact]
    public void The_folders_of_the_data_plane_use_only_folders_of_lower_layers()
    {
        var root = Source("src/MeshKit");
        var declaredIn = new Dictionary<string, string>(StringComparer.Ordinal);
        var sources = new List<(string Folder, string File, string Code)>();
        foreach (var folder in Layers.Keys)
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(root, folder), "*.cs", SearchOption.AllDirectories))
            {
                var code = CodeOnly(File.ReadAllText(file));
                sources.Add((folder, Path.GetFileName(file), code));
                foreach (Match declaration in Declaration().Matches(code))
                {
                    declaredIn.TryAdd(declaration.Groups[1].Value, folder);
                }
            }
        }

        var violations = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (folder, file, code) in sources)
        {
            foreach (Match word in Identifier().Matches(code))
            {
                if (declaredIn.TryGetValue(word.Value, out var owner) && owner != folder && Layers[owner] >= Layers[folder])
                {
                    violations.Add($"{folder}/{file} uses {word.Value} of {owner}/ (layer {Layers[owner]} is not below {folder}'s {Layers[folder]})");
                }
            }
        }

        Assert.True(violations.Count == 0, string.Join(Environment.NewLine, violations));
    }

    [Theory]
    [InlineData("src/MeshKit/MeshKit.csproj", "MeshKit.Abstractions")]
    [InlineData("src/MeshKit.ControlPlane/MeshKit.ControlPlane.csproj", "MeshKit.Abstractions,MeshKit.Consul")]
    [InlineData("src/MeshKit.Cli/MeshKit.Cli.csproj", "MeshKit.Abstractions,MeshKit.Consul")]
    [InlineData("src/MeshKit.Consul/MeshKit.Consul.csproj", "MeshKit.Abstractions")]
    [InlineData("src/MeshKit.Discovery.Consul/MeshKit.Discovery.Consul.csproj", "MeshKit,MeshKit.Consul")]
    [InlineData("src/MeshKit.Grpc/MeshKit.Grpc.csproj", "MeshKit")]
    [InlineData("src/MeshKit.Hosting.Aspire/MeshKit.Hosting.Aspire.csproj", "MeshKit.Abstractions")]
    [InlineData("src/MeshKit.Abstractions/MeshKit.Abstractions.csproj", "")]
    [InlineData("src/MeshKit.Testing/MeshKit.Testing.csproj", "MeshKit")]
    public void Each_package_references_only_the_packages_below_it(string project, string allowed)
    {
        var document = XDocument.Load(Source(project));
        var references = document.Descendants("ProjectReference").Select(r => Path.GetFileNameWithoutExtension(((string)r.Attribute("Include")!).Replace('\\', '/'))).Order(StringComparer.Ordinal);
        Assert.Equal(allowed.Split(',', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal), references);
    }

    [Fact]
    public void The_data_plane_opens_its_internals_to_no_other_package_than_its_own_add_ons()
    {
        var document = XDocument.Load(Source("src/MeshKit/MeshKit.csproj"));
        var friends = document.Descendants("InternalsVisibleTo").Select(r => (string)r.Attribute("Include")!).ToList();
        Assert.DoesNotContain("MeshKit.ControlPlane", friends);
        Assert.DoesNotContain("MeshKit.Cli", friends);
        Assert.DoesNotContain("meshctl", friends);
        Assert.All(friends, f => Assert.True(f.EndsWith(".Tests", StringComparison.Ordinal) || f is "MeshKit.TestFixtures" or "MeshKit.Benchmarks" or "MeshKit.Discovery.Consul" or "MeshKit.Testing", $"{f} sees MeshKit's internals"));
    }

    /// <summary>The source without comments and string literals, so a name in prose or a message is no dependency.</summary>
    private static string CodeOnly(string text) => NonCode().Replace(text, " ");

    private static string Source(string relative)
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "MeshKit.sln")))
        {
            directory = directory.Parent;
        }

        return Path.Combine(directory?.FullName ?? throw new InvalidOperationException("MeshKit.sln not found above the test's folder."), relative);
    }

    [GeneratedRegex(@"\b(?:class|record|struct|interface|enum)\s+([A-Z][A-Za-z0-9_]*)")]
    private static partial Regex Declaration();

    [GeneratedRegex(@"\b[A-Z][A-Za-z0-9_]*\b")]
    private static partial Regex Identifier();

    // Block and line comments, verbatim/raw/regular strings and char literals, in one pass so a quote in a comment is ignored.
    [GeneratedRegex(@"/\*.*?\*/|//[^\n]*|""""""[\s\S]*?""""""|@""(?:[^""]|"""")*""|\$?""(?:[^""\\\n]|\\.)*""|'(?:[^'\\\n]|\\.)'", RegexOptions.Singleline)]
    private static partial Regex NonCode();
}
