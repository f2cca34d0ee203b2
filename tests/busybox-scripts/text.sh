# Text applets: cat, wc, grep, sed, awk, sort, uniq, head, tail, cut, tr, od, expr, env.
printf 'banana\napple\ncherry\napple\ndate\nbanana\napple\n' > fruit.txt
cat fruit.txt | wc -l
wc -c fruit.txt
grep -c apple fruit.txt
grep -n an fruit.txt
grep -v a fruit.txt
sed 's/a/A/g' fruit.txt | head -3
sed -n '2,4p' fruit.txt
awk '{ n[$1]++ } END { for (f in n) print f, n[f] }' fruit.txt | sort
awk -F: '{ print $1 + $2 }' <<END
3:4
10:20
END
sort fruit.txt | uniq -c
sort -u fruit.txt | tr a-z A-Z
head -2 fruit.txt; tail -2 fruit.txt
echo "a,b,c,d" | cut -d, -f2,4
echo "hello" | od -c | head -1
printf 'AB\n' | od -An -tx1
expr 6 \* 7; expr length machina; expr substr machina 1 4
env -i A=1 B=2 env | sort
seq 1 10 | awk '{ s += $1 } END { print "sum", s }'
