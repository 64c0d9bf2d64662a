# bash completion for hgctl(1). Installed as
# share/bash-completion/completions/hgctl (loaded on demand by
# bash-completion); or source it from ~/.bashrc.

_hgctl()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -n = || return
    else
        COMPREPLY=()
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local global_opts="--host --port --username --password --cafile --cert --key
        --id --key-id --key-secret --key-file --timeout --json --topic-root
        --help --version"
    local commands="webhook escalate status keygen help"
    local webhook_cmds="get set delete test"

    # The command words typed so far (options and their values skipped).
    local i w cmd="" sub="" nargs=0
    local takes_value=" -h --host -p --port -u --username -P --password --cafile --cert
        --key -i --id --key-id --key-secret --key-file --timeout --topic-root --url
        --secret --secret-file --secret-header --field --sign-field --reason --summary
        --caller --call-sid --session --event-id --field-json --agent --action "
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
        --*=*) continue ;;
        -*)
            # keygen's --id takes a value too; so does the global -i/--id
            [[ $takes_value == *" $w "* ]] && ((i++))
            continue
            ;;
        esac
        if [[ -z $cmd ]]; then
            cmd=$w
        elif [[ $cmd == webhook && -z $sub ]]; then
            sub=$w
        else
            ((nargs++))
        fi
    done

    case $prev in
    --cafile | --cert | --key | --key-file | --secret-file)
        COMPREPLY=($(compgen -f -- "$cur"))
        [[ ${#COMPREPLY[@]} -gt 0 ]] && compopt -o filenames 2>/dev/null
        return
        ;;
    --action)
        COMPREPLY=($(compgen -W "get upsert delete test escalate" -- "$cur"))
        return
        ;;
    --agent)
        COMPREPLY=($(compgen -W "'*'" -- "$cur"))
        return
        ;;
    -h | --host | -p | --port | -u | --username | -P | --password | -i | --id | \
        --key-id | --key-secret | --timeout | --topic-root | --url | --secret | \
        --secret-header | --field | --sign-field | --reason | --summary | --caller | \
        --call-sid | --session | --event-id | --field-json)
        return
        ;;
    esac

    local opts=""
    case $cmd in
    "")
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
        ;;
    help)
        [[ $nargs -eq 0 && -z $sub ]] &&
            COMPREPLY=($(compgen -W "webhook escalate status keygen" -- "$cur"))
        return
        ;;
    webhook)
        if [[ -z $sub ]]; then
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$webhook_cmds" -- "$cur"))
            fi
            return
        fi
        [[ $sub == set ]] &&
            opts="--url --secret --secret-file --secret-header --field --sign-field --inactive"
        ;;
    escalate)
        opts="--reason --summary --caller --call-sid --session --event-id --field --field-json"
        ;;
    status)
        opts="--watch"
        ;;
    keygen)
        COMPREPLY=($(compgen -W "--id --agent --action --help" -- "$cur"))
        return
        ;;
    *)
        return
        ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts $global_opts" -- "$cur"))
    fi
}
complete -F _hgctl hgctl
