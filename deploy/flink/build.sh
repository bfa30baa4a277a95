#!/usr/bin/env bash
# Build the Beam Flink job-server uber jar (FlinkJobServerDriver) with Maven.
#
# usage: deploy/flink/build.sh BEAM_VERSION OUT_DIR [FLINK_MINOR]
#   BEAM_VERSION  must equal the Python apache-beam version, e.g. 2.62.0
#   OUT_DIR       where the jar goes (created if missing)
#   FLINK_MINOR   Flink line of the runner artifact, default 1.19
#
# Writes OUT_DIR/beam-runners-flink-<FLINK_MINOR>-job-server-<BEAM_VERSION>.jar and prints
# its absolute path as the last line of stdout. Idempotent: if that jar and its stamp file
# (recording versions + the pom's hash) already exist, nothing is rebuilt.
#
# Env: MAVEN_REPO_LOCAL  optional Maven local repository (default: Maven's, ~/.m2/repository)
#      FORCE=1           rebuild even if the stamp matches
set -euo pipefail

die() { echo "build.sh: error: $*" >&2; exit 1; }

[[ $# -ge 2 && $# -le 3 ]] || die "usage: $0 BEAM_VERSION OUT_DIR [FLINK_MINOR]"
BEAM_VERSION=$1
OUT_DIR=$2
FLINK_MINOR=${3:-1.19}
[[ $BEAM_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "BEAM_VERSION must look like 2.62.0, got '$BEAM_VERSION'"
[[ $FLINK_MINOR =~ ^[0-9]+\.[0-9]+$ ]] || die "FLINK_MINOR must look like 1.19, got '$FLINK_MINOR'"

command -v java >/dev/null 2>&1 || die "java not found on PATH (need a JDK 11 or 17 for Flink ${FLINK_MINOR})"
command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH (need Maven >= 3.6.3; e.g. apt-get install maven)"
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
[[ -n $java_major ]] || die "could not determine the Java version of $(command -v java)"
[[ ${java_major%%.*} -ge 11 ]] 2>/dev/null || die "java $java_major found; need Java >= 11"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM=$HERE/pom.xml
[[ -f $POM ]] || die "missing $POM"

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
JAR_NAME=beam-runners-flink-${FLINK_MINOR}-job-server-${BEAM_VERSION}.jar
JAR=$OUT_DIR/$JAR_NAME
STAMP=$OUT_DIR/.$JAR_NAME.stamp
pom_hash=$(sha256sum "$POM" | cut -d' ' -f1)
want_stamp="beam=${BEAM_VERSION} flink=${FLINK_MINOR} pom=${pom_hash}"

if [[ ${FORCE:-0} != 1 && -s $JAR && -f $STAMP && "$(cat "$STAMP")" == "$want_stamp" ]]; then
  echo "build.sh: up to date: $JAR" >&2
  echo "$JAR"
  exit 0
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/flink-jobserver-build.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

mvn_args=(-B -ntp -f "$POM"
  "-Dbeam.version=$BEAM_VERSION" "-Dflink.minor=$FLINK_MINOR"
  "-Djobserver.build.dir=$scratch/target" "-Djobserver.dir=$scratch/out")
[[ -n ${MAVEN_REPO_LOCAL:-} ]] && mvn_args+=("-Dmaven.repo.local=$MAVEN_REPO_LOCAL")

echo "build.sh: building $JAR_NAME (java $java_major) ..." >&2
rm -f "$STAMP"
mvn "${mvn_args[@]}" package >&2 || die "maven build failed (is org.apache.beam:beam-runners-flink-${FLINK_MINOR}:${BEAM_VERSION} and all of its dependencies on your Maven repository?)"

built=$scratch/out/$JAR_NAME
[[ -s $built ]] || die "maven finished but $built is missing"
mv -f "$built" "$JAR"
echo "$want_stamp" >"$STAMP"
echo "build.sh: wrote $JAR ($(du -h "$JAR" | cut -f1))" >&2
echo "$JAR"
