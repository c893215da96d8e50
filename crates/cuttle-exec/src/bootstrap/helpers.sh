# Octopus-compatible helper functions, as Calamari's Bootstrap.sh names them. POSIX sh, so
# the same text serves bash and sh scripts; it needs only coreutils (base64, wc, basename).

encode_servicemessagevalue() {
    printf '%s' "$1" | base64 | tr -d '\n'
}

decode_servicemessagevalue() {
    printf '%s' "$1" | base64 -d
}

set_octopusvariable() {
    __cuttle_message="##octopus[setVariable name='$(encode_servicemessagevalue "${1:-}")' value='$(encode_servicemessagevalue "${2:-}")'"
    if [ "${3:-}" = "-sensitive" ]; then
        __cuttle_message="$__cuttle_message sensitive='$(encode_servicemessagevalue "True")'"
    fi
    printf '%s]\n' "$__cuttle_message"
    __cuttle_remember_variable "${1:-}" "${2:-}"
}

new_octopusartifact() {
    __cuttle_artifact_path=${1:-}
    if [ -z "$__cuttle_artifact_path" ] || [ ! -e "$__cuttle_artifact_path" ]; then
        printf '%s\n' "new_octopusartifact: \"$__cuttle_artifact_path\" does not exist" >&2
        exit 1
    fi
    __cuttle_artifact_name=${2:-}
    if [ -z "$__cuttle_artifact_name" ]; then
        __cuttle_artifact_name=$(basename "$__cuttle_artifact_path")
    fi
    case $__cuttle_artifact_path in
        /*) ;;
        *) __cuttle_artifact_path="$(pwd)/$__cuttle_artifact_path" ;;
    esac
    __cuttle_artifact_length=$(wc -c < "$__cuttle_artifact_path" | tr -d ' ')
    printf '%s\n' "##octopus[stdout-verbose]"
    printf '%s\n' "Artifact $__cuttle_artifact_name will be collected from $__cuttle_artifact_path after this step completes"
    printf '%s\n' "##octopus[stdout-default]"
    printf '%s\n' "##octopus[createArtifact path='$(encode_servicemessagevalue "$__cuttle_artifact_path")' name='$(encode_servicemessagevalue "$__cuttle_artifact_name")' length='$(encode_servicemessagevalue "$__cuttle_artifact_length")']"
}

fail_step() {
    if [ -n "${1:-}" ]; then
        printf '%s\n' "##octopus[resultMessage message='$(encode_servicemessagevalue "$1")']"
    fi
    exit 1
}

update_progress() {
    printf '%s\n' "##octopus[progress percentage='$(encode_servicemessagevalue "${1:-0}")' message='$(encode_servicemessagevalue "${2:-}")']"
}

write_verbose() {
    printf '%s\n' "##octopus[stdout-verbose]" "${1:-}" "##octopus[stdout-default]"
}

write_highlight() {
    printf '%s\n' "##octopus[stdout-highlight]" "${1:-}" "##octopus[stdout-default]"
}

write_wait() {
    printf '%s\n' "##octopus[stdout-wait]" "${1:-}" "##octopus[stdout-default]"
}

write_warning() {
    printf '%s\n' "##octopus[stdout-warning]" "${1:-}" "##octopus[stdout-default]"
}

# Health check scripts (a machine policy's bash script) report as Octopus's do: a warning
# makes the target "healthy with warnings", an error line is only logged, and
# fail_healthcheck makes it unhealthy with its message.
echo_warning() {
    printf '%s\n' "##octopus[stdout-warning]" "${1:-}" "##octopus[stdout-default]"
}

echo_error() {
    printf '%s\n' "##octopus[stdout-error]" "${1:-}" "##octopus[stdout-default]"
}

fail_healthcheck() {
    if [ -n "${1:-}" ]; then
        echo_error "$1"
        printf '%s\n' "##octopus[resultMessage message='$(encode_servicemessagevalue "$1")']"
    fi
    exit 1
}
