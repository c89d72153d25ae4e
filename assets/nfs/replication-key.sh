# Writes the NFS replication key pair of this server (OpenSSH ed25519, no passphrase) derived
# from a seed, the first line of stdin (its sha256 is the ed25519 private key), so that the jump host
# can compute the public key for the peer without the private key ever leaving this host or
# being printed. Needs only bash, openssl, base64 and od.
# Usage: replication-key.sh KEYFILE COMMENT < seed
set -euo pipefail
key=$1 comment=$2
umask 077
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
# The seed is the first line of stdin (a heredoc adds a newline: not part of the seed).
IFS= read -r secret || [ -n "$secret" ]
{ printf '\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20'; printf '%s' "$secret" | openssl dgst -sha256 -binary; } > "$work/der"
secret=
seed=$(tail -c 32 "$work/der" | od -An -v -tx1 | tr -d ' \n')
pub=$(openssl pkey -inform DER -in "$work/der" -pubout -outform DER | tail -c 32 | od -An -v -tx1 | tr -d ' \n')
hexstr() { printf '%08x%s' $(( ${#1} / 2 )) "$1"; }
ascii() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
check=$(printf '%s' "$seed" | cut -c1-8)
pubblob=$(hexstr "$(ascii ssh-ed25519)")$(hexstr "$pub")
priv=$check$check$(hexstr "$(ascii ssh-ed25519)")$(hexstr "$pub")$(hexstr "$seed$pub")$(hexstr "$(ascii "$comment")")
i=1
while [ $(( ${#priv} / 2 % 8 )) -ne 0 ]; do priv=$priv$(printf '%02x' $i); i=$((i + 1)); done
all=$(ascii openssh-key-v1)00$(hexstr "$(ascii none)")$(hexstr "$(ascii none)")$(hexstr '')00000001$(hexstr "$pubblob")$(hexstr "$priv")
tobin() { local esc; esc=$(printf '%s' "$1" | sed 's/../\\x&/g'); printf "$esc"; }
tobin "$all" > "$work/bin"
{
  echo '-----BEGIN OPENSSH PRIVATE KEY-----'
  base64 -w 70 < "$work/bin"
  echo '-----END OPENSSH PRIVATE KEY-----'
} > "$work/key"
printf 'ssh-ed25519 %s %s\n' "$(tobin "$pubblob" | base64 -w0)" "$comment" > "$work/key.pub"
install -d -m 0700 -- "$(dirname -- "$key")"
install -m 0600 -- "$work/key" "$key"
install -m 0644 -- "$work/key.pub" "$key.pub"
