# cuttle-exec sh bootstrap (generated; do not edit). It reads the script's variables once
# from standard input into numbered shell variables, replaces standard input with /dev/null,
# defines the Octopus helper functions, then runs the script in this shell.
__cuttle_preamble=$(cat)
eval "$__cuttle_preamble"
unset __cuttle_preamble
: "${__cuttle_variable_count:=0}"
exec </dev/null

get_octopusvariable() {
    __cuttle_index=0
    __cuttle_result=
    while [ "$__cuttle_index" -lt "$__cuttle_variable_count" ]; do
        eval "__cuttle_candidate=\${__cuttle_name_$__cuttle_index}"
        if [ "$__cuttle_candidate" = "${1:-}" ]; then
            eval "__cuttle_result=\${__cuttle_value_$__cuttle_index}"
        fi
        __cuttle_index=$((__cuttle_index + 1))
    done
    printf '%s\n' "$__cuttle_result"
}

__cuttle_remember_variable() {
    if [ -n "${1:-}" ]; then
        eval "__cuttle_name_$__cuttle_variable_count=\$1"
        eval "__cuttle_value_$__cuttle_variable_count=\${2:-}"
        __cuttle_variable_count=$((__cuttle_variable_count + 1))
    fi
}

#### HELPERS ####

__cuttle_script=$1
shift
. "$__cuttle_script"
