# pgpass.sh - sourced by the test and bench scripts: keep the database
# password off command lines, where `ps` shows it to every user.  libpq
# (the server, psql) reads it from the file PGPASSFILE names instead.
#
#   pg_hide_password DIR     moves the password of $DATABASE_URL into
#                            DIR/pgpass (mode 0600), exports PGPASSFILE and
#                            DATABASE_URL without it; nothing when it has none
#   pg_url_password URL      the password of a conninfo or URI ("" if none)
#   pg_url_without_password URL

pg_url_password() {
    case "$1" in
    *://*) sed -nE 's#^[a-z]+://[^:/@]*:([^@]*)@.*#\1#p' <<<"$1" ;;
    *) sed -nE 's/(^|.* )password=([^ ]*).*/\2/p' <<<"$1" ;;
    esac
}

pg_url_without_password() {
    case "$1" in
    *://*) sed -E 's#^([a-z]+://[^:/@]*):[^@]*@#\1@#' <<<"$1" ;;
    *) sed -E 's/(^| )password=[^ ]*//; s/^ +//' <<<"$1" ;;
    esac
}

pg_hide_password() {
    local dir=$1 pw
    pw=$(pg_url_password "${DATABASE_URL:-}")
    [ -n "$pw" ] || return 0
    # pgpass escapes ':' and '\' in its fields
    (umask 077; printf '*:*:*:*:%s\n' "$(sed 's/\\/\\\\/g; s/:/\\:/g' <<<"$pw")" >"$dir/pgpass")
    PGPASSFILE=$dir/pgpass
    DATABASE_URL=$(pg_url_without_password "$DATABASE_URL")
    export PGPASSFILE DATABASE_URL
}
