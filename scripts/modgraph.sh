#!/usr/bin/env bash
# The graph of amldns's source files and its cycles. Prints one "from to" line
# per edge (paths under src/), then either "no cycles" or one "cycle: …" line
# per loop, and exits 1 on any cycle, so CI can call it (needs perl).
#
# A node is a file: src/lib.rs, and each module file under src/ (src/a.rs,
# src/a/mod.rs, src/a/b.rs …). src/main.rs is another crate and left out.
# An edge "x uses y" is a path in x's non-test code that names y:
#   - `crate::a::b::Item`, `super::…`, `self::…`, and a child's name
#     (`b::Item` where x declares `mod b;`), `use` groups
#     (`crate::{a, b::{c, d}}`) expanded, in `use` lines or in code;
#   - resolved to the file of the longest module the path names: src/a/b.rs
#     or src/a/b/mod.rs for `a::b::Item`, else src/a.rs or src/a/mod.rs when
#     `b` is an item (a re-export included), else src/lib.rs.
# Comments, string literals, `#[cfg(test)]` items (a test may use any module)
# and files of test-only modules (`#[cfg(test)] mod x;`) are left out.
#
# The rule: a file and what it uses must not use that file back. One kind of
# edge does not count, shown as "(re-export)": a parent's `pub use` of its own
# descendant (`pub use batch::prepare;`) whose name the parent's code does not
# use again, which, like `mod b;`, only says what the parent is made of. A child using items defined in its parent
# while the parent's own code uses the child (a call, a type, a private
# `use`) is a cycle: move what both need into a file of its own.
set -euo pipefail
# The source folder: the first argument, or this repository's src/.
cd "${1:-$(dirname "$0")/../src}"

exec perl - <<'PERL'
use strict;
use warnings;
use File::Find;

my @files;
find({ no_chdir => 1, wanted => sub { push @files, $1 if m{^\./(.+\.rs)$} } }, ".");
@files = sort grep { $_ ne "main.rs" } @files;

# "a::b" for a/b.rs and a/b/mod.rs, "" for lib.rs.
sub module_of {
    my ($f) = @_;
    $f =~ s/\.rs$//;
    $f =~ s{(^|/)mod$}{};
    return "" if $f eq "lib";
    $f =~ s{/}{::}g;
    return $f;
}
my %file_of = map { (module_of($_) => $_) } @files;

# The text a file compiles to outside tests: comments and string literals
# blanked, then each #[cfg(test)] item cut out with its body.
my %test_only;
sub code_of {
    my ($file) = @_;
    open my $fh, "<", $file or die "$file: $!";
    local $/;
    my $s = <$fh>;
    $s =~ s{ (b?r(\#*)".*?"\2) | (b?"(?:[^"\\]|\\.)*") | (b?\x27(?:[^\x27\\\n]|\\[^\x27\n]{1,10})\x27)
             | (//[^\n]*) | (/\*.*?\*/) }
           { defined $1 || defined $3 ? "\"\"" : defined $4 ? "\x27_\x27" : " " }gsex;
    my $out = "";
    while ($s =~ /\G(.*?)#\[cfg\(test\)\]/gsc) {
        $out .= $1;
        # Further attributes, then the item up to its `;` or matching `}`.
        my $pos = pos($s);
        my $depth = 0;
        my $rest = substr($s, $pos);
        if ($rest =~ /^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;/) {
            my $m = module_of($file);
            $test_only{ $m eq "" ? $1 : "${m}::$1" } = 1;
        }
        for (; $pos < length $s; $pos++) {
            my $c = substr($s, $pos, 1);
            if ($c eq "[") { $depth++ } elsif ($c eq "]") { $depth-- }
            elsif ($c eq "{") { $depth++ }
            elsif ($c eq "}") { $depth--; if ($depth == 0) { $pos++; last } }
            elsif ($c eq ";" && $depth == 0) { $pos++; last }
        }
        pos($s) = $pos;
    }
    $out .= substr($s, pos($s) // 0);
    return $out;
}
my %code = map { ($_ => code_of($_)) } @files;
@files = grep {
    my $m = module_of($_);
    !grep { $m eq $_ || index($m, "${_}::") == 0 } keys %test_only
} @files;

# The file a path (module segments from the crate root) lands in.
sub file_of_path {
    my @seg = @_;
    while (@seg) {
        my $f = $file_of{ join "::", @seg };
        return $f if defined $f;
        pop @seg;
    }
    return "lib.rs";
}

# Every path a file names, as [segments from the crate root, in `pub use`].
sub paths_of {
    my ($file) = @_;
    my @mod = grep { $_ ne "" } split /::/, module_of($file);
    my @t = $code{$file} =~ /([A-Za-z_][A-Za-z0-9_]*|::|[{}(),;*\$]|\S)/g;
    my %child = map { ($_ => 1) } $code{$file} =~ /\bmod\s+([a-z_][a-z0-9_]*)\s*;/g;
    my (@out, @inline, $depth, $pub_use);
    $depth = 0;
    # The paths of a `::`-tree at $t[$i], under @pre; returns the next index.
    my $tree;
    $tree = sub {
        my ($i, @pre) = @_;
        while (1) {
            if (($t[$i] // "") eq "{") {
                $i++;
                while ($i < @t && $t[$i] ne "}") {
                    if ($t[$i] eq "self" || $t[$i] eq "*") { push @out, [[@pre], $pub_use]; $i++ }
                    elsif ($t[$i] eq ",") { $i++ }
                    elsif ($t[$i] =~ /^[a-z_]/i) { $i = $tree->($i, @pre) }
                    else { $i++ }
                }
                return $i + 1;
            }
            return $i unless ($t[$i] // "") =~ /^[A-Za-z_]/;
            push @pre, $t[$i++];
            if (($t[$i] // "") ne "::") {
                my $name = ($t[$i] // "") eq "as" ? $t[$i + 1] : $pre[-1];
                push @out, [[@pre], $pub_use, $name];
                return $i;
            }
            $i++;
            if (($t[$i] // "") eq "*") { push @out, [[@pre[0 .. $#pre - 1]], $pub_use]; return $i + 1 }
        }
    };
    for (my $i = 0; $i < @t; $i++) {
        my $w = $t[$i];
        if ($w eq "{") {
            $depth++;
            push @inline, [$t[$i - 1], $depth] if $i >= 2 && $t[$i - 2] eq "mod";
            next;
        }
        if ($w eq "}") { pop @inline if @inline && $inline[-1][1] == $depth; $depth--; next }
        if ($w eq "use") { $pub_use = $i >= 1 && ($t[$i - 1] eq "pub" || ($i >= 4 && $t[$i - 1] eq ")" && $t[$i - 4] eq "pub")); next }
        if ($w eq ";") { $pub_use = 0; next }
        next unless ($t[$i + 1] // "") eq "::";
        next if $i > 0 && ($t[$i - 1] eq "::" || $t[$i - 1] eq "\$");
        my @here = (@mod, map { $_->[0] } @inline);
        my @base;
        if ($w eq "crate") { @base = () }
        elsif ($w eq "self") { @base = @here }
        elsif ($w eq "super") {
            @base = @here;
            while (($t[$i] // "") eq "super" && ($t[$i + 1] // "") eq "::") { pop @base; $i += 2 }
            $i -= 2;
        }
        elsif ($child{$w} && !@inline) { @base = (@here, $w) }
        else { next }
        my $end = $tree->($i + 2, @base);
        $i = $end - 1;
    }
    return @out;
}

my (%edges, %structural);
for my $file (@files) {
    my $m = module_of($file);
    for my $p (paths_of($file)) {
        my ($seg, $pub_use, $name) = @$p;
        my $to = file_of_path(@$seg);
        next if $to eq $file || !grep { $_ eq $to } @files;
        my $target = module_of($to);
        # Re-exported only if the name is not used again in this file.
        my $uses = defined $name ? () = $code{$file} =~ /\b\Q$name\E\b/g : 1;
        if ($pub_use && $uses == 1 && ($m eq "" || index($target, "${m}::") == 0)) {
            $structural{$file}{$to} = 1;
        } else {
            $edges{$file}{$to} = 1;
        }
    }
}
for my $f (sort keys %structural) {
    print "$f $_ (re-export)\n" for sort grep { !$edges{$f}{$_} } keys %{ $structural{$f} };
}
for my $f (sort keys %edges) { print "$f $_\n" for sort keys %{ $edges{$f} } }

# Each strongly connected set of files (Tarjan), shown as one of its loops.
my ($index, %idx, %low, %on, @stack, @sets) = (0);
my $visit;
$visit = sub {
    my ($v) = @_;
    $idx{$v} = $low{$v} = $index++;
    push @stack, $v;
    $on{$v} = 1;
    for my $w (sort keys %{ $edges{$v} || {} }) {
        if (!exists $idx{$w}) { $visit->($w); $low{$v} = $low{$w} if $low{$w} < $low{$v} }
        elsif ($on{$w} && $idx{$w} < $low{$v}) { $low{$v} = $idx{$w} }
    }
    if ($low{$v} == $idx{$v}) {
        my @set;
        while (1) { my $w = pop @stack; $on{$w} = 0; push @set, $w; last if $w eq $v }
        push @sets, [sort @set] if @set > 1;
    }
};
$visit->($_) for grep { !exists $idx{$_} } @files;
for my $set (sort { $a->[0] cmp $b->[0] } @sets) {
    # The shortest loop through the set's first file.
    my %in = map { ($_ => 1) } @$set;
    my $start = $set->[0];
    my %prev = ($start => undef);
    my @queue = ($start);
    my $last;
    BFS: while (@queue) {
        my $v = shift @queue;
        for my $w (sort keys %{ $edges{$v} }) {
            next unless $in{$w};
            if ($w eq $start) { $last = $v; last BFS }
            next if exists $prev{$w};
            $prev{$w} = $v;
            push @queue, $w;
        }
    }
    my @loop = ($start);
    for (my $v = $last; $v ne $start; $v = $prev{$v}) { splice @loop, 1, 0, $v }
    my $more = @$set > @loop ? " (and with it: " . join(" ", grep { my $x = $_; !grep { $_ eq $x } @loop } @$set) . ")" : "";
    print STDERR "cycle: ", join(" -> ", @loop, $start), $more, "\n";
}
if (@sets) { exit 1 }
print STDERR "no cycles\n";
PERL
