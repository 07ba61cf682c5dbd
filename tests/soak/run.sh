#!/usr/bin/env bash
# Soak: the chaos scenarios, with the certificate-rotation scenario running for 10 minutes with a rotation every 20 s
# (40 s certificates renewed at half their life). Figures (requests sent, failed, maximum latency) are appended as JSON
# lines to tests/soak/results/<UTC timestamp>.jsonl and summarised at the end. Loopback only; bounded by the test runner.
set -euo pipefail
cd "$(dirname "$0")/../.."

mkdir -p tests/soak/results
report="tests/soak/results/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
export MESHKIT_SOAK=1
export MESHKIT_SCENARIO_REPORT="$PWD/$report"

dotnet build tests/MeshKit.Tests -c Release -v q -nologo
timeout 30m dotnet test tests/MeshKit.Tests -c Release --no-build \
  --filter "Area=Chaos|FullyQualifiedName~RotationTests.Continuous_calls" \
  --logger "console;verbosity=normal"

echo
echo "== figures ($report)"
cat "$report"
