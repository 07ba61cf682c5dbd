using System.Globalization;
using System.Text.Json.Nodes;

namespace MeshKit.Testing.Consul;

/// <summary>
/// The double's catalog, checks and KV store, with one Raft-like index that every write advances. All access is
/// under one lock; waiters are woken through a task that is replaced on every write. It outlives restarts of the
/// HTTP host, as a Consul cluster's state outlives a restart of the local agent's HTTP API.
/// </summary>
internal sealed class ConsulDoubleState
{
    private readonly Lock _gate = new();
    private readonly ConsulDoubleOptions _options;
    private readonly Dictionary<string, ServiceRecord> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CheckRecord> _checks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _serviceIndexes = new(StringComparer.OrdinalIgnoreCase);
    private readonly SortedDictionary<string, KvRecord> _kv = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _kvTombstones = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SessionRecord> _sessions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _lockDelays = new(StringComparer.Ordinal);
    private readonly string _nodeId = Guid.NewGuid().ToString();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _index = 1;
    private long _servicesTableIndex = 1;
    private long _extinctionIndex = 1;
    private long _kvTableIndex = 1;
    private long _sessionsTableIndex = 1;
    private long _indexShift;
    private int _epoch;
    private DateTimeOffset _lastReap = DateTimeOffset.MinValue;

    public ConsulDoubleState(ConsulDoubleOptions options)
    {
        _options = options;
    }

    public bool EmptyServiceAddresses { get; set; }

    /// <summary>Gets a task that completes on the next write.</summary>
    public Task Changed
    {
        get
        {
            lock (_gate)
            {
                return _changed.Task;
            }
        }
    }

    public long ReportedIndex
    {
        get
        {
            lock (_gate)
            {
                return Report(_index);
            }
        }
    }

    /// <summary>Gets a number that changes when the state is replaced (a rewind); blocking queries return at once then.</summary>
    public int Epoch => Volatile.Read(ref _epoch);

    /// <summary>
    /// Makes every index the double reports go backwards by <paramref name="by"/> (at least to 0), as a snapshot restore
    /// does; like Consul's "abandon" signal on restore, it releases every waiting blocking query.
    /// </summary>
    public void Rewind(long by)
    {
        lock (_gate)
        {
            _indexShift += by;
            Interlocked.Increment(ref _epoch);
            Signal();
        }
    }

    public long Report(long index) => Math.Max(0, index - _indexShift);

    // ---- Agent: services and checks ----

    public string? Register(JsonObject body, DateTimeOffset now)
    {
        var name = Json.String(body, "Name");
        if (string.IsNullOrEmpty(name))
        {
            return "Missing service name";
        }

        var id = Json.String(body, "ID");
        if (string.IsNullOrEmpty(id))
        {
            id = name;
        }

        var checks = new List<JsonObject>();
        if (Json.Get(body, "Check") is JsonObject single)
        {
            checks.Add(single);
        }

        if (Json.Get(body, "Checks") is JsonArray many)
        {
            checks.AddRange(many.OfType<JsonObject>());
        }

        var parsedChecks = new List<CheckRecord>();
        for (var i = 0; i < checks.Count; i++)
        {
            var check = checks[i];
            var ttlText = Json.String(check, "TTL");
            if (string.IsNullOrEmpty(ttlText))
            {
                return "The Consul double only models TTL checks; give the check a TTL";
            }

            if (!GoDuration.TryParse(ttlText, out var ttl))
            {
                return $"Invalid TTL '{ttlText}'";
            }

            TimeSpan? deregisterAfter = null;
            var deregisterText = Json.String(check, "DeregisterCriticalServiceAfter");
            if (!string.IsNullOrEmpty(deregisterText))
            {
                if (!GoDuration.TryParse(deregisterText, out var after))
                {
                    return $"Invalid DeregisterCriticalServiceAfter '{deregisterText}'";
                }

                deregisterAfter = after < _options.MinimumDeregisterCriticalServiceAfter ? _options.MinimumDeregisterCriticalServiceAfter : after;
            }

            var status = Json.String(check, "Status") ?? "critical";
            if (status.Length == 0)
            {
                status = "critical";
            }

            if (!IsStatus(status))
            {
                return $"Invalid check status '{status}'";
            }

            var checkId = Json.String(check, "CheckID") ?? Json.String(check, "ID");
            if (string.IsNullOrEmpty(checkId))
            {
                checkId = checks.Count == 1 ? "service:" + id : $"service:{id}:{i + 1}";
            }

            parsedChecks.Add(new CheckRecord
            {
                Id = checkId,
                Name = Json.String(check, "Name") is { Length: > 0 } checkName ? checkName : $"Service '{name}' check",
                ServiceId = id,
                ServiceName = name,
                Status = status,
                Output = string.Empty,
                Notes = Json.String(check, "Notes") ?? string.Empty,
                Ttl = ttl,
                TtlExpiresAt = now + ttl,
                DeregisterAfter = deregisterAfter,
                CriticalSince = status == "critical" ? now : null,
            });
        }

        var tags = Json.Get(body, "Tags") is JsonArray tagArray ? tagArray.Select(t => t?.GetValue<string>() ?? string.Empty).ToList() : [];
        var meta = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (Json.Get(body, "Meta") is JsonObject metaObject)
        {
            foreach (var (key, value) in metaObject)
            {
                meta[key] = value?.GetValue<string>() ?? string.Empty;
            }
        }

        var weights = Json.Get(body, "Weights") as JsonObject;
        lock (_gate)
        {
            var write = NextIndex();
            var created = write;
            if (_services.TryGetValue(id, out var existing))
            {
                created = existing.CreateIndex;
                RemoveChecksOf(id);
                if (!string.Equals(existing.Name, name, StringComparison.OrdinalIgnoreCase))
                {
                    TouchOrExtinguish(existing.Name, write, removing: id);
                }
            }

            _services[id] = new ServiceRecord
            {
                Id = id,
                Name = name,
                Tags = tags,
                Meta = meta,
                Address = Json.String(body, "Address") ?? string.Empty,
                Port = Json.Int(body, "Port"),
                WeightPassing = weights is null ? 1 : Json.Int(weights, "Passing", 1),
                WeightWarning = weights is null ? 1 : Json.Int(weights, "Warning", 1),
                CreateIndex = created,
                ModifyIndex = write,
            };
            foreach (var check in parsedChecks)
            {
                check.CreateIndex = write;
                check.ModifyIndex = write;
                _checks[check.Id] = check;
            }

            _serviceIndexes[name] = write;
            _servicesTableIndex = write;
            Signal();
        }

        return null;
    }

    public bool Deregister(string id)
    {
        lock (_gate)
        {
            if (!_services.ContainsKey(id))
            {
                return false;
            }

            RemoveService(id, NextIndex());
            Signal();
            return true;
        }
    }

    /// <summary>Sets a TTL check's status and resets its TTL. Returns false when the agent does not know the check.</summary>
    public bool UpdateCheck(string checkId, string status, string? output, DateTimeOffset now)
    {
        lock (_gate)
        {
            if (!_checks.TryGetValue(checkId, out var check))
            {
                return false;
            }

            check.TtlExpiresAt = now + check.Ttl;
            output ??= string.Empty;

            // Like the agent, only a change of status or output is written; a renewal alone does not move the index.
            if (check.Status == status && check.Output == output)
            {
                return true;
            }

            SetCheck(check, status, output, now, NextIndex());
            Signal();
            return true;
        }
    }

    /// <summary>Turns TTL checks that were not renewed critical, and reaps services critical for longer than allowed.</summary>
    public void Tick(DateTimeOffset now)
    {
        lock (_gate)
        {
            var wrote = false;
            foreach (var check in _checks.Values)
            {
                if (check.Status != "critical" && now >= check.TtlExpiresAt)
                {
                    SetCheck(check, "critical", "TTL expired", now, NextIndex());
                    wrote = true;
                }
            }

            foreach (var session in _sessions.Values.Where(s => s.ExpiresAt is { } at && now >= at).ToList())
            {
                Invalidate(session, now, NextIndex());
                wrote = true;
            }

            if (now - _lastReap >= _options.ReapInterval)
            {
                _lastReap = now;
                var reap = _checks.Values
                    .Where(c => c.Status == "critical" && c.DeregisterAfter is { } after && c.CriticalSince is { } since && now - since >= after)
                    .Select(c => c.ServiceId)
                    .Distinct()
                    .ToList();
                foreach (var serviceId in reap)
                {
                    if (_services.ContainsKey(serviceId))
                    {
                        RemoveService(serviceId, NextIndex());
                        wrote = true;
                    }
                }
            }

            if (wrote)
            {
                Signal();
            }
        }
    }

    public bool HasService(string serviceId)
    {
        lock (_gate)
        {
            return _services.ContainsKey(serviceId);
        }
    }

    public string? CheckStatus(string checkId)
    {
        lock (_gate)
        {
            return _checks.TryGetValue(checkId, out var check) ? check.Status : null;
        }
    }

    // ---- Reads ----

    public (long Index, JsonArray Entries) HealthService(string name, bool passingOnly, string? tag, Func<JsonObject, bool>? filter)
    {
        lock (_gate)
        {
            var entries = new JsonArray();
            foreach (var service in _services.Values.Where(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase)).OrderBy(s => s.Id, StringComparer.Ordinal))
            {
                var checks = _checks.Values.Where(c => c.ServiceId == service.Id).OrderBy(c => c.Id, StringComparer.Ordinal).ToList();
                if (passingOnly && checks.Any(c => c.Status != "passing"))
                {
                    continue;
                }

                if (tag is not null && !service.Tags.Contains(tag, StringComparer.OrdinalIgnoreCase))
                {
                    continue;
                }

                var entry = new JsonObject
                {
                    ["Node"] = NodeJson(),
                    ["Service"] = ServiceJson(service),
                    ["Checks"] = new JsonArray([NodeCheckJson(), .. checks.Select(CheckJson)]),
                };
                if (filter is null || filter(entry))
                {
                    entries.Add(entry);
                }
            }

            var index = _serviceIndexes.TryGetValue(name, out var serviceIndex) ? serviceIndex : _extinctionIndex;
            return (Report(index), entries);
        }
    }

    public (long Index, JsonObject Services) CatalogServices()
    {
        lock (_gate)
        {
            var services = new JsonObject();
            foreach (var group in _services.Values.GroupBy(s => s.Name, StringComparer.OrdinalIgnoreCase).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var tags = group.SelectMany(s => s.Tags).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
                services[group.Key] = new JsonArray([.. tags.Select(t => (JsonNode)JsonValue.Create(t))]);
            }

            return (Report(_servicesTableIndex), services);
        }
    }

    // ---- KV ----

    public (long Index, JsonArray? Entries) KvGet(string key, bool recurse)
    {
        lock (_gate)
        {
            if (!recurse)
            {
                if (_kv.TryGetValue(key, out var entry))
                {
                    return (Report(entry.ModifyIndex), [KvJson(entry)]);
                }

                return (Report(_kvTombstones.TryGetValue(key, out var deleted) ? deleted : _kvTableIndex), null);
            }

            var found = new JsonArray();
            long index = 0;
            foreach (var entry in _kv.Values.Where(e => e.Key.StartsWith(key, StringComparison.Ordinal)))
            {
                found.Add(KvJson(entry));
                index = Math.Max(index, entry.ModifyIndex);
            }

            foreach (var (deletedKey, deletedAt) in _kvTombstones)
            {
                if (deletedKey.StartsWith(key, StringComparison.Ordinal))
                {
                    index = Math.Max(index, deletedAt);
                }
            }

            return (Report(index == 0 ? _kvTableIndex : index), found.Count == 0 ? null : found);
        }
    }

    public bool KvPut(string key, byte[] value, ulong? cas, ulong flags)
    {
        lock (_gate)
        {
            var exists = _kv.TryGetValue(key, out var entry);
            if (cas is { } expected)
            {
                // cas=0 writes only if the key is absent; otherwise the key's ModifyIndex (as reported) must match.
                if (expected == 0 ? exists : !exists || (ulong)Report(entry!.ModifyIndex) != expected)
                {
                    return false;
                }
            }

            // A plain write goes through even on a locked key, and leaves the lock as it was.
            var write = NextIndex();
            _kv[key] = new KvRecord
            {
                Key = key,
                Value = value,
                Flags = flags,
                CreateIndex = exists ? entry!.CreateIndex : write,
                ModifyIndex = write,
                LockIndex = exists ? entry!.LockIndex : 0,
                Session = exists ? entry!.Session : null,
            };
            _kvTombstones.Remove(key);
            _kvTableIndex = write;
            Signal();
            return true;
        }
    }

    public bool KvDelete(string key, bool recurse, ulong? cas)
    {
        lock (_gate)
        {
            if (cas is { } expected && !recurse)
            {
                if (!_kv.TryGetValue(key, out var entry) || (ulong)Report(entry.ModifyIndex) != expected)
                {
                    return false;
                }
            }

            var keys = recurse ? _kv.Keys.Where(k => k.StartsWith(key, StringComparison.Ordinal)).ToList() : _kv.ContainsKey(key) ? [key] : [];
            if (keys.Count == 0)
            {
                return true;
            }

            var write = NextIndex();
            foreach (var k in keys)
            {
                _kv.Remove(k);
                _kvTombstones[k] = write;
            }

            _kvTableIndex = write;
            Signal();
            return true;
        }
    }

    // ---- Sessions ----

    /// <summary>Creates a session with Consul's defaults and checks; returns its ID, or the error Consul would answer (500).</summary>
    public (string? Id, string? Error) SessionCreate(JsonObject? body, DateTimeOffset now)
    {
        var lockDelay = TimeSpan.FromSeconds(15);
        var name = string.Empty;
        var node = _options.NodeName;
        var behavior = "release";
        var ttlText = string.Empty;
        List<string> checks = ["serfHealth"];
        if (body is not null)
        {
            if (Json.Get(body, "LockDelay") is JsonValue delay)
            {
                // As the agent: a duration string or nanoseconds; below 1000 (ns) the number means seconds.
                if (delay.TryGetValue<string>(out var delayText))
                {
                    if (!GoDuration.TryParse(delayText, out lockDelay))
                    {
                        return (null, $"Request decode failed: time: invalid duration \"{delayText}\"");
                    }
                }
                else if (delay.TryGetValue<double>(out var nanoseconds))
                {
                    lockDelay = TimeSpan.FromTicks((long)(nanoseconds / 100));
                }

                if (lockDelay.Ticks * 100 < 1000)
                {
                    lockDelay = TimeSpan.FromSeconds(lockDelay.Ticks * 100);
                }
            }

            name = Json.String(body, "Name") ?? string.Empty;
            if (Json.String(body, "Node") is { Length: > 0 } requested)
            {
                node = requested;
            }

            behavior = Json.String(body, "Behavior") ?? string.Empty;
            ttlText = Json.String(body, "TTL") ?? string.Empty;

            // Naming checks (even an empty list) replaces the default serfHealth: an empty list is a TTL-only session.
            if ((Json.Get(body, "NodeChecks") ?? Json.Get(body, "Checks")) is JsonArray named)
            {
                checks = [.. named.Select(c => c?.GetValue<string>() ?? string.Empty)];
            }
            else if (body.Any(p => string.Equals(p.Key, "NodeChecks", StringComparison.OrdinalIgnoreCase) || string.Equals(p.Key, "Checks", StringComparison.OrdinalIgnoreCase)))
            {
                checks = [];
            }

            if (Json.Get(body, "ServiceChecks") is JsonArray { Count: > 0 })
            {
                return (null, "The Consul double does not model ServiceChecks on sessions");
            }
        }

        if (!string.Equals(node, _options.NodeName, StringComparison.Ordinal))
        {
            return (null, $"Missing node registration");
        }

        foreach (var check in checks)
        {
            if (check != "serfHealth")
            {
                return (null, $"Missing check '{check}' registration");
            }
        }

        behavior = behavior.Length == 0 ? "release" : behavior;
        if (behavior is not ("release" or "delete"))
        {
            return (null, $"Invalid Behavior setting '{behavior}'");
        }

        var ttl = TimeSpan.Zero;
        if (ttlText.Length > 0)
        {
            if (!GoDuration.TryParse(ttlText, out ttl))
            {
                return (null, $"Session TTL '{ttlText}' invalid");
            }

            if (ttl != TimeSpan.Zero && (ttl < _options.MinimumSessionTtl || ttl > TimeSpan.FromHours(24)))
            {
                return (null, $"Invalid Session TTL '{ttl.Ticks * 100}', must be between [{_options.MinimumSessionTtl.TotalSeconds}s=24h0m0s]");
            }
        }

        lock (_gate)
        {
            var write = NextIndex();
            var id = Guid.NewGuid().ToString();
            _sessions[id] = new SessionRecord
            {
                Id = id,
                Name = name,
                Node = node,
                LockDelay = lockDelay,
                Behavior = behavior,
                TtlText = ttl == TimeSpan.Zero ? string.Empty : ttlText,
                Ttl = ttl,
                NodeChecks = checks,
                ExpiresAt = ttl == TimeSpan.Zero ? null : now + (ttl * _options.SessionTtlMultiplier),
                CreateIndex = write,
            };
            _sessionsTableIndex = write;
            Signal();
            return (id, null);
        }
    }

    /// <summary>Renews a session's TTL (no write, as in Consul); null when the session is unknown.</summary>
    public JsonArray? SessionRenew(string id, DateTimeOffset now)
    {
        lock (_gate)
        {
            if (!_sessions.TryGetValue(id, out var session))
            {
                return null;
            }

            if (session.Ttl > TimeSpan.Zero)
            {
                session.ExpiresAt = now + (session.Ttl * _options.SessionTtlMultiplier);
            }

            return [SessionJson(session)];
        }
    }

    /// <summary>Destroys a session: its locks are released (or deleted) and their lock delay starts. Unknown IDs are fine.</summary>
    public void SessionDestroy(string id, DateTimeOffset now)
    {
        lock (_gate)
        {
            if (_sessions.TryGetValue(id, out var session))
            {
                Invalidate(session, now, NextIndex());
                Signal();
            }
        }
    }

    /// <summary>Invalidates a session as the agent does when one of its checks fails; false when unknown.</summary>
    public bool SessionInvalidate(string id, DateTimeOffset now)
    {
        lock (_gate)
        {
            if (!_sessions.TryGetValue(id, out var session))
            {
                return false;
            }

            Invalidate(session, now, NextIndex());
            Signal();
            return true;
        }
    }

    public (long Index, JsonArray Sessions) SessionInfo(string id)
    {
        lock (_gate)
        {
            var found = new JsonArray();
            if (_sessions.TryGetValue(id, out var session))
            {
                found.Add(SessionJson(session));
            }

            return (Report(_sessionsTableIndex), found);
        }
    }

    public (long Index, JsonArray Sessions) SessionList(string? node)
    {
        lock (_gate)
        {
            var found = new JsonArray();
            foreach (var session in _sessions.Values.Where(s => node is null || s.Node == node).OrderBy(s => s.CreateIndex))
            {
                found.Add(SessionJson(session));
            }

            return (Report(_sessionsTableIndex), found);
        }
    }

    public bool HasSession(string id)
    {
        lock (_gate)
        {
            return _sessions.ContainsKey(id);
        }
    }

    // ---- KV locks ----

    /// <summary>
    /// <c>?acquire=</c>: refused (false) while another session holds the key or its lock delay runs; idempotent for the
    /// holder (value updated, LockIndex unchanged); a new holder raises LockIndex. An unknown session is an error.
    /// </summary>
    public (bool Done, string? Error) KvAcquire(string key, string session, byte[] value, ulong? flags, DateTimeOffset now)
    {
        lock (_gate)
        {
            if (session.Length == 0)
            {
                return (false, "missing session");
            }

            if (!_sessions.ContainsKey(session))
            {
                return (false, $"invalid session \"{session}\"");
            }

            // Checked before the write, on the (one) server's clock, as Consul's leader does.
            if (_lockDelays.TryGetValue(key, out var until) && until > now)
            {
                return (false, null);
            }

            var exists = _kv.TryGetValue(key, out var entry);
            if (exists && !string.IsNullOrEmpty(entry!.Session) && entry.Session != session)
            {
                return (false, null);
            }

            var write = NextIndex();
            var holder = exists && entry!.Session == session;
            _kv[key] = new KvRecord
            {
                Key = key,
                Value = value,
                Flags = flags ?? (exists ? entry!.Flags : 0),
                CreateIndex = exists ? entry!.CreateIndex : write,
                ModifyIndex = write,
                LockIndex = holder ? entry!.LockIndex : (exists ? entry!.LockIndex : 0) + 1,
                Session = session,
            };
            _kvTombstones.Remove(key);
            _kvTableIndex = write;
            Signal();
            return (true, null);
        }
    }

    /// <summary><c>?release=</c>: only the holder releases; the key keeps its LockIndex and takes the given value. No lock delay.</summary>
    public (bool Done, string? Error) KvRelease(string key, string session, byte[] value, ulong? flags)
    {
        lock (_gate)
        {
            if (session.Length == 0)
            {
                return (false, "missing session");
            }

            if (!_kv.TryGetValue(key, out var entry) || entry.Session != session)
            {
                return (false, null);
            }

            var write = NextIndex();
            _kv[key] = new KvRecord
            {
                Key = key,
                Value = value,
                Flags = flags ?? entry.Flags,
                CreateIndex = entry.CreateIndex,
                ModifyIndex = write,
                LockIndex = entry.LockIndex,
                Session = null,
            };
            _kvTableIndex = write;
            Signal();
            return (true, null);
        }
    }

    /// <summary>Gets until when a key's lock delay runs, or null.</summary>
    public DateTimeOffset? LockDelayUntil(string key)
    {
        lock (_gate)
        {
            return _lockDelays.TryGetValue(key, out var until) ? until : null;
        }
    }

    private static bool IsStatus(string status) => status is "passing" or "warning" or "critical";

    /// <summary>Ends a session: release (or delete) what it holds, start each key's lock delay (at most 60 s), as Consul's state store does.</summary>
    private void Invalidate(SessionRecord session, DateTimeOffset now, long write)
    {
        _sessions.Remove(session.Id);
        _sessionsTableIndex = write;
        var delay = session.LockDelay > TimeSpan.FromSeconds(60) ? TimeSpan.FromSeconds(60) : session.LockDelay;
        foreach (var entry in _kv.Values.Where(e => e.Session == session.Id).ToList())
        {
            if (session.Behavior == "delete")
            {
                _kv.Remove(entry.Key);
                _kvTombstones[entry.Key] = write;
            }
            else
            {
                _kv[entry.Key] = new KvRecord
                {
                    Key = entry.Key,
                    Value = entry.Value,
                    Flags = entry.Flags,
                    CreateIndex = entry.CreateIndex,
                    ModifyIndex = write,
                    LockIndex = entry.LockIndex,
                    Session = null,
                };
            }

            if (delay > TimeSpan.Zero)
            {
                _lockDelays[entry.Key] = now + delay;
            }

            _kvTableIndex = write;
        }
    }

    private JsonObject SessionJson(SessionRecord session) => new()
    {
        ["ID"] = session.Id,
        ["Name"] = session.Name,
        ["Node"] = session.Node,
        ["LockDelay"] = session.LockDelay.Ticks * 100,
        ["Behavior"] = session.Behavior,
        ["TTL"] = session.TtlText,
        ["NodeChecks"] = new JsonArray([.. session.NodeChecks.Select(c => (JsonNode)JsonValue.Create(c))]),
        ["ServiceChecks"] = null,
        ["CreateIndex"] = Report(session.CreateIndex),
        ["ModifyIndex"] = Report(session.CreateIndex),
    };

    private long NextIndex() => ++_index;

    private void Signal()
    {
        var previous = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        previous.TrySetResult();
    }

    private void SetCheck(CheckRecord check, string status, string output, DateTimeOffset now, long write)
    {
        if (status == "critical" && check.Status != "critical")
        {
            check.CriticalSince = now;
        }
        else if (status != "critical")
        {
            check.CriticalSince = null;
        }

        check.Status = status;
        check.Output = output;
        check.ModifyIndex = write;
        _serviceIndexes[check.ServiceName] = write;
    }

    private void RemoveChecksOf(string serviceId)
    {
        foreach (var id in _checks.Values.Where(c => c.ServiceId == serviceId).Select(c => c.Id).ToList())
        {
            _checks.Remove(id);
        }
    }

    private void RemoveService(string id, long write)
    {
        var service = _services[id];
        _services.Remove(id);
        RemoveChecksOf(id);
        TouchOrExtinguish(service.Name, write, removing: id);
        _servicesTableIndex = write;
    }

    /// <summary>Moves a service name's index, or, when its last instance goes, records the "extinction" index Consul answers for unknown names.</summary>
    private void TouchOrExtinguish(string name, long write, string removing)
    {
        if (_services.Values.Any(s => s.Id != removing && string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase)))
        {
            _serviceIndexes[name] = write;
        }
        else
        {
            _serviceIndexes.Remove(name);
            _extinctionIndex = write;
        }
    }

    private JsonObject NodeJson() => new()
    {
        ["ID"] = _nodeId,
        ["Node"] = _options.NodeName,
        ["Address"] = _options.NodeAddress,
        ["Datacenter"] = _options.Datacenter,
        ["TaggedAddresses"] = new JsonObject { ["lan"] = _options.NodeAddress, ["wan"] = _options.NodeAddress },
        ["Meta"] = new JsonObject { ["consul-network-segment"] = string.Empty },
        ["CreateIndex"] = Report(1),
        ["ModifyIndex"] = Report(1),
    };

    private JsonObject ServiceJson(ServiceRecord service)
    {
        var meta = new JsonObject();
        foreach (var (key, value) in service.Meta)
        {
            meta[key] = value;
        }

        return new JsonObject
        {
            ["ID"] = service.Id,
            ["Service"] = service.Name,
            ["Tags"] = new JsonArray([.. service.Tags.Select(t => (JsonNode)JsonValue.Create(t))]),
            ["Address"] = EmptyServiceAddresses ? string.Empty : service.Address,
            ["Meta"] = meta,
            ["Port"] = service.Port,
            ["Weights"] = new JsonObject { ["Passing"] = service.WeightPassing, ["Warning"] = service.WeightWarning },
            ["EnableTagOverride"] = false,
            ["Datacenter"] = _options.Datacenter,
            ["CreateIndex"] = Report(service.CreateIndex),
            ["ModifyIndex"] = Report(service.ModifyIndex),
        };
    }

    private JsonObject NodeCheckJson() => new()
    {
        ["Node"] = _options.NodeName,
        ["CheckID"] = "serfHealth",
        ["Name"] = "Serf Health Status",
        ["Status"] = "passing",
        ["Notes"] = string.Empty,
        ["Output"] = "Agent alive and reachable",
        ["ServiceID"] = string.Empty,
        ["ServiceName"] = string.Empty,
        ["ServiceTags"] = new JsonArray(),
        ["Type"] = string.Empty,
        ["CreateIndex"] = Report(1),
        ["ModifyIndex"] = Report(1),
    };

    private JsonObject CheckJson(CheckRecord check) => new()
    {
        ["Node"] = _options.NodeName,
        ["CheckID"] = check.Id,
        ["Name"] = check.Name,
        ["Status"] = check.Status,
        ["Notes"] = check.Notes,
        ["Output"] = check.Output,
        ["ServiceID"] = check.ServiceId,
        ["ServiceName"] = check.ServiceName,
        ["ServiceTags"] = new JsonArray([.. (_services.TryGetValue(check.ServiceId, out var s) ? s.Tags : []).Select(t => (JsonNode)JsonValue.Create(t))]),
        ["Type"] = "ttl",
        ["CreateIndex"] = Report(check.CreateIndex),
        ["ModifyIndex"] = Report(check.ModifyIndex),
    };

    private JsonObject KvJson(KvRecord entry)
    {
        var json = new JsonObject
        {
            ["LockIndex"] = entry.LockIndex,
            ["Key"] = entry.Key,
            ["Flags"] = entry.Flags,
            ["Value"] = entry.Value.Length == 0 ? null : Convert.ToBase64String(entry.Value),
            ["CreateIndex"] = Report(entry.CreateIndex),
            ["ModifyIndex"] = Report(entry.ModifyIndex),
        };

        // Consul writes Session only while the key is locked.
        if (!string.IsNullOrEmpty(entry.Session))
        {
            json["Session"] = entry.Session;
        }

        return json;
    }

    private sealed class ServiceRecord
    {
        public required string Id { get; init; }

        public required string Name { get; init; }

        public required List<string> Tags { get; init; }

        public required SortedDictionary<string, string> Meta { get; init; }

        public required string Address { get; init; }

        public int Port { get; init; }

        public int WeightPassing { get; init; }

        public int WeightWarning { get; init; }

        public long CreateIndex { get; init; }

        public long ModifyIndex { get; init; }
    }

    private sealed class CheckRecord
    {
        public required string Id { get; init; }

        public required string Name { get; init; }

        public required string ServiceId { get; init; }

        public required string ServiceName { get; init; }

        public required string Status { get; set; }

        public required string Output { get; set; }

        public required string Notes { get; init; }

        public TimeSpan Ttl { get; init; }

        public DateTimeOffset TtlExpiresAt { get; set; }

        public TimeSpan? DeregisterAfter { get; init; }

        public DateTimeOffset? CriticalSince { get; set; }

        public long CreateIndex { get; set; }

        public long ModifyIndex { get; set; }
    }

    private sealed class KvRecord
    {
        public required string Key { get; init; }

        public required byte[] Value { get; init; }

        public ulong Flags { get; init; }

        public long CreateIndex { get; init; }

        public long ModifyIndex { get; init; }

        public long LockIndex { get; init; }

        public string? Session { get; init; }
    }

    private sealed class SessionRecord
    {
        public required string Id { get; init; }

        public required string Name { get; init; }

        public required string Node { get; init; }

        public TimeSpan LockDelay { get; init; }

        public required string Behavior { get; init; }

        /// <summary>The TTL as it was given (Consul keeps the text), empty for none.</summary>
        public required string TtlText { get; init; }

        public TimeSpan Ttl { get; init; }

        public required List<string> NodeChecks { get; init; }

        public DateTimeOffset? ExpiresAt { get; set; }

        public long CreateIndex { get; init; }
    }
}

/// <summary>Case-insensitive reads of request bodies, as Go's JSON decoder matches field names.</summary>
internal static class Json
{
    public static JsonNode? Get(JsonObject body, string name)
    {
        if (body.TryGetPropertyValue(name, out var exact))
        {
            return exact;
        }

        foreach (var (key, value) in body)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }

        return null;
    }

    public static string? String(JsonObject body, string name) =>
        Get(body, name) is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    public static int Int(JsonObject body, string name, int fallback = 0) =>
        Get(body, name) is JsonValue value && value.TryGetValue<int>(out var number) ? number : fallback;

    public static string Text(JsonNode node) =>
        node is JsonValue value && value.TryGetValue<string>(out var text) ? text : node.ToJsonString();

    public static string Format(long value) => value.ToString(CultureInfo.InvariantCulture);
}
