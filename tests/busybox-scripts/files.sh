# File applets: mkdir, ls, find, ln, readlink, stat, chmod, touch, cp, mv, rm, tar, md5sum, dd, date.
mkdir -p tree/a/b tree/c
echo one > tree/a/one.txt
echo two > tree/a/b/two.txt
printf '%s' 12345 > tree/c/five
ls tree; ls tree/a
find tree | sort
find tree -type f -name '*.txt' | sort
ln -s a/one.txt tree/link; readlink tree/link; cat tree/link
ln tree/c/five tree/c/hard; stat -c '%n %s %h %F' tree/c/five tree/c/hard; stat -c '%n %h %F' tree/a
stat -c '%n %F' tree/link
chmod 640 tree/c/five; stat -c '%a' tree/c/five
touch -d '2001-02-03 04:05:06' tree/c/five; stat -c '%Y %y' tree/c/five
cp tree/a/one.txt copy.txt; mv copy.txt moved.txt; cat moved.txt; ls copy.txt 2>/dev/null || echo "copy gone"
tar cf t.tar tree; tar tf t.tar | sort
mkdir out; cd out; tar xf ../t.tar; cd ..; find out -type f | sort; cat out/tree/a/b/two.txt
md5sum tree/a/one.txt tree/c/five
dd if=/dev/zero of=zeros bs=512 count=8 2>/dev/null; stat -c '%s' zeros; md5sum zeros
dd if=tree/c/five bs=1 skip=2 count=2 2>/dev/null; echo
date -u -d @86400 '+%Y-%m-%d %H:%M:%S'
rm -r tree out; ls
