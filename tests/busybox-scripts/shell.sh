# The shell itself: loops, functions, arithmetic, pipes, redirections, traps, here-documents.
i=0
while [ $i -lt 5 ]; do i=$((i + 1)); printf '%s ' "$i"; done; echo
for w in alpha beta gamma; do echo "word $w"; done | sort -r
square() { echo $(($1 * $1)); }
echo "squares: $(square 3) $(square 12)"
case "machina" in mach*) echo "case matched" ;; *) echo "no match" ;; esac
echo "arith: $((7 * 6)) $((100 / 7)) $((100 % 7)) $((1 << 10))"
x=5; x=$((x * 2)); echo "x is $x"
echo out > redir.txt; echo more >> redir.txt; cat < redir.txt
( echo to-stderr 1>&2 ) 2> err.txt; echo "stderr went to the file: $(cat err.txt)"
ls nothing-here > both.txt 2>&1; echo "status $?"; wc -l < both.txt
trap 'echo trapped USR1' USR1
kill -USR1 $$
trap 'echo exiting' EXIT
cat <<END
here-doc line one
here-doc $x
END
true && echo and-ok; false || echo or-ok
echo "pipe status: $(false | true; echo $?)"
set -- a b c; echo "args $# $2"; shift; echo "after shift $*"
read first rest <<END
one two three
END
echo "read: $first / $rest"
