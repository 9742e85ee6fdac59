# Sums the .text input sections of a GNU ld map file (-Wl,-Map): per ahmsa archive, and the rest
# (the C and C++ runtime, the program itself). Used by scripts/embed_size.sh.
function hex(s,   i, c, v) { v = 0; s = tolower(substr(s, 3)); for (i = 1; i <= length(s); ++i) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; v = v * 16 + c } return v }
/^Linker script and memory map/ { on = 1 }
on && /^ \.[^ ]+$/ { sec = $1; pend = 1; next }
on && /^ \.[^ ]+ +0x/ { sec = $1; sz = $3; f = $4; take() ; next }
pend == 1 && $1 ~ /^0x/ && NF >= 3 { sz = $2; f = $3; pend = 0; take(); next }
{ pend = 0 }
function take(   a) { if (sec ~ /^\.text/) { if (f ~ /libahmsa_/) { split(f, a, "("); lib[a[1]] += hex(sz) } else other += hex(sz) } }
END { for (l in lib) { printf "%s %d\n", l, lib[l]; t += lib[l] } printf "ahmsa .text %d, everything else .text %d\n", t, other }
