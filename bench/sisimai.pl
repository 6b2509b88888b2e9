#!/usr/bin/perl
# sisimai.pl - the reference a user would otherwise pick: Perl Sisimai (Debian's
# libsisimai-perl) over the same messages bouncepipe replay reads.
#
# usage: perl bench/sisimai.pl PATH...
#
# PATH is read the way bouncepipe's sources read it: a directory with new/ and cur/ is a
# Maildir (new/ then cur/, tmp/ skipped); another directory is searched recursively in name
# order, skipping dot files; a file is an mbox (Sisimai reads a file without "From " lines
# as one message).  Every message goes through Sisimai::Message and Sisimai::Data, as
# Sisimai->make does, and every result is printed as one JSON line on stdout (the
# counterpart of bouncepipe's NDJSON).  "messages N results R" goes to stderr.
use strict;
use warnings;
use Sisimai;
use Sisimai::Data;
use Sisimai::Mail;
use Sisimai::Message;

my ($messages, $results) = (0, 0);

sub files_of {
    my ($dir, $depth) = @_;
    return () if $depth > 16;
    if (-d "$dir/new" && -d "$dir/cur") {
        return (files_of("$dir/new", $depth + 1), files_of("$dir/cur", $depth + 1));
    }
    opendir(my $dh, $dir) or return ();
    my @names = sort grep { !/^\./ } readdir $dh;
    closedir $dh;
    my @out;
    for my $name (@names) {
        my $full = "$dir/$name";
        push @out, -d $full ? files_of($full, $depth + 1) : $full;
    }
    return @out;
}

sub replay_file {
    my ($file) = @_;
    my $mail = Sisimai::Mail->new($file) or return;
    while (my $raw = $mail->data->read) {
        $messages++;
        my $mesg = Sisimai::Message->new('data' => $raw) or next;
        my $data = Sisimai::Data->make('data' => $mesg, 'origin' => $mail->data->path);
        for my $e (@$data) {
            print $e->dump('json'), "\n";
            $results++;
        }
    }
}

die "usage: sisimai.pl PATH...\n" unless @ARGV;
for my $path (@ARGV) {
    replay_file($_) for (-d $path ? files_of($path, 0) : ($path));
}
printf STDERR "messages %d results %d\n", $messages, $results;
