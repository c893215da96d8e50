# cuttle-exec bash bootstrap (generated; do not edit). It reads the script's variables once
# from standard input into the octopus_parameters array, replaces standard input with
# /dev/null, defines the Octopus helper functions, then runs the script in this shell.
declare -A octopus_parameters=()
__cuttle_preamble=$(cat)
eval "$__cuttle_preamble"
unset __cuttle_preamble
exec </dev/null

get_octopusvariable() {
    if [ -n "${1:-}" ] && [ -n "${octopus_parameters[$1]+set}" ]; then
        printf '%s\n' "${octopus_parameters[$1]}"
    else
        echo ""
    fi
}

__cuttle_remember_variable() {
    if [ -n "${1:-}" ]; then
        octopus_parameters[$1]=${2:-}
    fi
}

#### HELPERS ####

__cuttle_script=$1
shift
. "$__cuttle_script"
