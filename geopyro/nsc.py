"""Name server control: ``python -m geopyro.nsc [-n host] [-p port] command [args]`` (or ``geopyro-nsc``).

Exit codes: 0 done, 1 the name server refused or could not be found, 2 bad usage.
A refused command prints ``Error: <type> - <message>`` on stdout, as Pyro5's tool does.
"""

import argparse
import sys

from . import core, errors

__all__ = ["main", "handle_command"]


class UsageError(Exception):
    """The command was given the wrong arguments."""


def _format_metadata(metadata):
    return "{%s}" % ", ".join(repr(item) for item in sorted(metadata))


def _print_list(entries, title=""):
    print("--------START LIST %s" % title)
    for name, (uri, metadata) in sorted(entries.items()):
        print("%s --> %s" % (name, uri))
        if metadata:
            print("    metadata: %s" % _format_metadata(metadata))
    print("--------END LIST %s" % title)


def _need(args, low, high, what):
    if not low <= len(args) <= high:
        raise UsageError("requires %s" % what)


def cmd_ping(ns, args, options):
    """``ping``: check that the name server answers."""
    _need(args, 0, 0, "no arguments")
    ns.ping()
    print("Name server ping ok.")


def cmd_list(ns, args, options):
    """``list [prefix]``: print every registration (or those whose name starts with ``prefix``) and its metadata."""
    _need(args, 0, 1, "at most one argument: prefix")
    if args:
        _print_list(ns.list(prefix=args[0], return_metadata=True), "- prefix '%s'" % args[0])
    else:
        _print_list(ns.list(return_metadata=True))


def cmd_listmatching(ns, args, options):
    """``listmatching pattern``: print the registrations whose name matches the regular expression (from its start)."""
    _need(args, 1, 1, "one argument: pattern")
    _print_list(ns.list(regex=args[0], return_metadata=True), "- regex '%s'" % args[0])


def cmd_yplookup_all(ns, args, options):
    """``yplookup_all tag...`` (or ``listmeta_all``): print the registrations that have every one of the tags."""
    _need(args, 1, sys.maxsize, "at least one metadata tag argument")
    _print_list(ns.yplookup(meta_all=args, return_metadata=True), " - searched by metadata")


def cmd_yplookup_any(ns, args, options):
    """``yplookup_any tag...`` (or ``listmeta_any``): print the registrations that have at least one of the tags."""
    _need(args, 1, sys.maxsize, "at least one metadata tag argument")
    _print_list(ns.yplookup(meta_any=args, return_metadata=True), " - searched by metadata")


def cmd_lookup(ns, args, options):
    """``lookup name``: print the URI registered for the name, and its metadata if it has any."""
    _need(args, 1, 1, "one argument: name")
    uri, metadata = ns.lookup(args[0], return_metadata=True)
    print(uri)
    if metadata:
        print("metadata: %s" % _format_metadata(metadata))


def cmd_register(ns, args, options):
    """``register name uri``: register the name for the URI; a name that is registered already is refused."""
    _need(args, 2, 2, "two arguments: name uri")
    ns.register(args[0], args[1], safe=True)
    print("Registered %s" % args[0])


def cmd_remove(ns, args, options):
    """``remove name``: remove one registration and say whether there was one to remove."""
    _need(args, 1, 1, "one argument: name")
    print("Removed %s" % args[0] if ns.remove(args[0]) else "Nothing removed")


def cmd_removematching(ns, args, options):
    """``removematching pattern``: remove every name the regular expression matches, after asking first
    (unless ``-y`` was given); print how many were removed."""
    _need(args, 1, 1, "one argument: pattern")
    if not options.yes:
        answer = input("Potentially removing lots of items from the Name server. Are you sure (y/n)?").strip()
        if answer not in ("y", "Y"):
            print("Nothing removed")
            return
    print("%d items removed." % ns.remove(regex=args[0]))


def cmd_setmeta(ns, args, options):
    """``setmeta name [tag...]``: replace the name's metadata with the tags given (no tags: clear it)."""
    _need(args, 1, sys.maxsize, "arguments: name and zero or more metadata tags")
    metadata = set(args[1:])
    ns.set_metadata(args[0], metadata)
    print("Metadata updated" if metadata else "Metadata cleared")


COMMANDS = {
    "ping": cmd_ping,
    "list": cmd_list,
    "listmatching": cmd_listmatching,
    "yplookup_all": cmd_yplookup_all,
    "yplookup_any": cmd_yplookup_any,
    "listmeta_all": cmd_yplookup_all,
    "listmeta_any": cmd_yplookup_any,
    "lookup": cmd_lookup,
    "register": cmd_register,
    "remove": cmd_remove,
    "removematching": cmd_removematching,
    "setmeta": cmd_setmeta,
}


def handle_command(ns, command, args, options=None):
    """Run one command against a name server proxy.

    As Pyro5's does, it prints a failure as ``Error: <type> - <message>`` on
    stdout and raises it again (an unknown command is a KeyError); wrong
    arguments raise UsageError unprinted.
    """
    options = options or argparse.Namespace(yes=False)
    try:
        COMMANDS[command](ns, list(args), options)
    except UsageError:
        raise
    except Exception as exc:
        print("Error: %s - %s" % (type(exc).__name__, exc))
        raise


def _parser():
    parser = argparse.ArgumentParser(prog="geopyro-nsc", description="Control a (geopyro or Pyro5) name server.")
    parser.add_argument("-n", "--host", default="", help="hostname of the name server (default: locate it)")
    parser.add_argument("-p", "--port", type=int, help="port of the name server (or broadcast port without -n)")
    parser.add_argument("-u", "--unixsocket", help="Unix domain socket name of the name server")
    parser.add_argument("-y", "--yes", action="store_true", help="don't ask before removematching")
    parser.add_argument("-v", "--verbose", action="store_true", help="say what is going on")
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="command",
                        help="one of: %s" % ", ".join(sorted(COMMANDS)))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's arguments")
    return parser


def main(args=None):
    """Run the tool; returns the exit code."""
    parser = _parser()
    options = parser.parse_args(args)
    host = core.UNIX_PREFIX + options.unixsocket if options.unixsocket else options.host
    if options.verbose:
        print("Locating name server...")
    try:
        ns = core.locate_ns(host or None, options.port)
    except errors.PyroError as exc:
        print("Error: no name server found: %s" % exc, file=sys.stderr)
        return 1
    with ns:
        if options.verbose:
            print("Name server found: %s" % ns._pyroUri)
        try:
            handle_command(ns, options.command, options.args, options)
        except UsageError as exc:
            print("%s: %s %s" % (parser.prog, options.command, exc), file=sys.stderr)
            return 2
        except Exception:
            return 1  # handle_command printed it
    if options.verbose:
        print("Done.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
