"""``rootseed sign`` and ``rootseed verify``: container signatures and the quorum."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from rootseed.cli.common import options
from rootseed.cli.trust_options import quorum_options, store_options
from rootseed.console import emit_json, err, out
from rootseed.errors import ErrorKind, RootseedError
from rootseed.oci.verified import open_image
from rootseed.provenance.statement import PROVENANCE_FILE, read_statement
from rootseed.settings import Settings
from rootseed.tree import Tree
from rootseed.trust import gpg, store
from rootseed.trust import payload as payload_mod
from rootseed.trust.facts import CryptoStatus, SignatureFacts
from rootseed.trust.payload import PayloadFormat
from rootseed.trust.quorum import QuorumPolicy, QuorumResult, Verdict
from rootseed.trust.sequoia import Keyring
from rootseed.trust.verify import ImageVerifier
from rootseed.wording import count


@dataclass(frozen=True)
class _PackageInfo:
    namespace: str
    version: str


def _package_info(settings: Settings, name: str) -> _PackageInfo:
    """The tree's namespace and the version of the package that makes image ``name``."""
    tree = Tree.load(settings.tree)
    package = tree.get(tree.images.get(name, name))
    return _PackageInfo(tree.namespace, package.version)


def _known_image(settings: Settings, name: str) -> None:
    """Raise "no package NAME" (with close names) when the tree loads and lacks ``name``."""
    try:
        tree = Tree.load(settings.tree)
    except RootseedError:
        return  # no tree to ask: the missing image is the message
    tree.get(tree.images.get(name, name))


def _manifest_digest(image_dir: Path, *, check_blobs: bool = False) -> str:
    """The local image's manifest digest; with ``check_blobs``, also verify its blobs."""
    if not (image_dir / "index.json").is_file():
        raise RootseedError(f"no image at {image_dir} (index.json is missing)",
                            hint="build the package first (rootseed build), pass --out, or "
                                 "give --digest / --digests-file", kind=ErrorKind.LAYOUT,
                            file=str(image_dir / "index.json"))
    del check_blobs  # every reader verifies every blob now (rootseed.oci.verified)
    return payload_mod.check_manifest_digest(open_image(image_dir).manifest_digest)


def _digest_from_file(path: Path, name: str) -> str:
    """Look ``name`` up in a ``digests/<stage>.txt`` file (``<sha256> <stage>-<name>``)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise RootseedError(f"cannot read digests file {path}: {e.strerror}") from e
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if len(fields) == 2 and fields[1] == name:
            digest = fields[0] if ":" in fields[0] else f"sha256:{fields[0]}"
            try:
                return payload_mod.check_manifest_digest(digest)
            except RootseedError as e:
                raise e.at(f"{path}:{number}", file=str(path), line=number) from None
    raise RootseedError(f"{path}: no line for package {name}",
                        hint="lines are '<manifest sha256> <stage>-<name>'")


def _must_count(result: QuorumResult, key: str, what: str) -> None:
    """Refuse a new signature the quorum core would not count (one decision path)."""
    [verdict] = result.verdicts
    if not verdict.counted:
        why = verdict.detail if verdict.reason is None else (
            f"{verdict.reason.value}: {verdict.detail}")
        raise RootseedError(f"the new {what} signature by {key} would not count: {why}",
                            hint="use a key that is neither expired nor revoked (Ed25519, or "
                                 "RSA of at least 2048 bits) and a SHA-2 digest; nothing "
                                 "was stored", kind=ErrorKind.SIGNATURE)


def _signed_before(listing: store.Listing, signer: str | None, directory: Path,
                   check: Callable[[bytes, str], SignatureFacts]) -> Path | None:
    """This signer's existing good signature in ``listing``, if any."""
    for stored in listing.files:
        if stored.data is None:
            continue
        facts = check(stored.data, stored.name)
        if facts.status is CryptoStatus.GOOD and facts.primary_fingerprint == signer:
            return directory / stored.name
    return None


@click.command("sign")
@click.argument("package")
@click.option("--key", required=True, help="Signing key fingerprint (append '!' to force "
              "this exact subkey; tools such as skopeo only accept the key they trust).")
@click.option("--gnupghome", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="GnuPG home holding the secret key (default: GnuPG's own default).")
@store_options
@click.option("--tag", default=None, help="Tag in the docker reference (default: the "
              "package version).")
@options("tree", "out")
def sign(package: str, key: str, gnupghome: Path | None, signatures: Path,
         registry: str | None, tag: str | None, settings: Settings) -> None:
    """Sign the manifest digest of the locally built image of PACKAGE, and its provenance.

    Writes an OpenPGP-signed "atomic container signature" (the containers/image and
    StageX format) as the next signature-N and, when the image has a provenance.json, a
    detached signature over it as the next provenance-N in the same directory. Both are
    checked with Sequoia and counted by the quorum rules before they are stored; a key that
    already signed both is refused.
    """
    image_dir = settings.out / package
    digest = _manifest_digest(image_dir, check_blobs=True)
    statement = _provenance_bytes(image_dir, package, digest)
    if registry is None or tag is None:
        info = _package_info(settings, package)
        registry = registry if registry is not None else info.namespace
        tag = tag if tag is not None else info.version
    reference = f"{registry}/{package}:{tag}"
    document = payload_mod.build(reference, digest)
    directory = store.signature_dir(signatures, registry, package, digest)

    keyring = Keyring(gpg.export_public_key(key, gnupghome=gnupghome), source=f"key {key}")
    policy = QuorumPolicy(keyring.fingerprints, 1)

    signature = gpg.sign(document, key, gnupghome=gnupghome)
    mine = keyring.check(signature, name="new signature")
    _must_count(policy.evaluate([mine], digest=digest, reference=reference), key, "image")
    signer = mine.primary_fingerprint
    image_before = _signed_before(store.read_signatures(directory), signer, directory,
                                  lambda data, name: keyring.check(data, name=name))
    detached: bytes | None = None
    prov_before: Path | None = None
    if statement is not None:
        stmt = statement
        detached = gpg.sign(stmt, key, gnupghome=gnupghome, detached=True)
        facts = keyring.check_detached(detached, stmt, name="new provenance signature")
        _must_count(policy.evaluate_statement([facts], digest=digest, statement=stmt), key,
                    "provenance")
        prov_before = _signed_before(
            store.read_signatures(directory, store.Kind.PROVENANCE), signer, directory,
            lambda data, name: keyring.check_detached(data, stmt, name=name))
    if image_before is not None and (detached is None or prov_before is not None):
        raise RootseedError(
            f"key {signer} already signed {package} {digest} ({image_before}"
            + (f", {prov_before}" if prov_before is not None else "") + ")",
            hint="each key counts once; nothing was added", kind=ErrorKind.SIGNATURE,
            package=package)
    image_path = store.add_signature(directory, signature) if image_before is None else None
    prov_path = (store.add_signature(directory, detached, store.Kind.PROVENANCE)
                 if detached is not None and prov_before is None else None)
    if settings.json:
        emit_json({"package": package, "reference": reference, "digest": digest,
                   "signer": signer, "signing_key": mine.signing_fingerprint,
                   "signature": None if image_path is None else str(image_path),
                   "provenance_signature": None if prov_path is None else str(prov_path)})
        return
    subkey = ("" if mine.signing_fingerprint == signer
              else f" (subkey {mine.signing_fingerprint})")
    lines = [f"signed {escape(reference)} {digest}", f"  by {signer}{subkey}"]
    lines.append(f"  -> {escape(str(image_path))}" if image_path is not None
                 else f"  image: already signed by this key ({escape(str(image_before))})")
    if prov_path is not None:
        lines.append(f"  -> {escape(str(prov_path))} (provenance.json)")
    elif statement is None:
        lines.append("  no provenance.json beside the image: only the image was signed")
    out.print("\n".join(lines), soft_wrap=True)


def _provenance_bytes(image_dir: Path, package: str, digest: str) -> bytes | None:
    """The image's provenance.json, if any, after checking it describes this image."""
    path = image_dir / PROVENANCE_FILE
    if not os.path.lexists(path):  # a symlink is not absent: read_statement refuses it
        return None
    prov = read_statement(path, package=package)
    if prov.subject_digest != digest or prov.package != package:
        raise RootseedError(
            f"{package}: {path} describes {prov.package} {prov.subject_digest}, not this "
            f"image ({digest})", hint="rebuild the package; nothing was signed",
            kind=ErrorKind.PROVENANCE, package=package, file=str(path))
    return prov.raw


@click.command("verify")
@click.argument("package")
@quorum_options(keyring_required=True)
@click.option("--tag", default=None,
              help="Require this tag in the signed reference (default: any tag).")
@click.option("--digest", default=None, help="Verify this manifest digest (sha256:…) "
              "instead of the local image's.")
@click.option("--digests-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Take the digest from a digests/<stage>.txt file instead of the local image.")
@options("tree", "out")
def verify(package: str, keyring_path: Path, quorum: int, signatures: Path,
           registry: str | None, tag: str | None, digest: str | None,
           digests_file: Path | None, settings: Settings) -> None:
    """Check that at least --quorum distinct trusted keys signed PACKAGE's digest.

    signature-1, signature-2, … (up to the first gap, as skopeo reads them) are checked
    in-process with Sequoia's StandardPolicy against --keyring; SHA-1/MD5 signatures and
    RSA/DSA keys under 2048 bits never count; subkeys count for their primary key, each key
    counts once, and the signed digest (and reference) must match. StageX's legacy payloads
    (2023-12 .. 2025-05) are accepted and shown as "legacy format". Exit status 0 only if
    the quorum is met.
    """
    if digest is not None and digests_file is not None:
        raise click.UsageError("give either --digest or --digests-file, not both")
    if digest is not None:
        digest = payload_mod.check_manifest_digest(digest)
    elif digests_file is not None:
        digest = _digest_from_file(digests_file, package)
    else:
        if not (settings.out / package / "index.json").is_file():
            _known_image(settings, package)  # a mistyped name: no such package, not no image
        digest = _manifest_digest(settings.out / package)
    if registry is None:
        registry = _package_info(settings, package).namespace
    with ImageVerifier(keyring_path, signatures=signatures, registry=registry,
                       quorum=quorum) as verifier:
        directory = verifier.directory(package, digest)
        checked = verifier.check_image(package, digest, tag=tag)
    result = checked.result

    if settings.json:
        emit_json({"package": package, **result.to_json(), "ignored": list(checked.ignored)})
    else:
        _render(package, result, directory, checked.ignored)
    if not result.passed:
        # Not click's Exit: rootseed.cli.main runs click with standalone_mode=False, where
        # click turns Exit(1) into a return value that main() does not pass on.
        sys.exit(1)


def _signer(v: Verdict) -> str:
    if v.signer is not None:
        text = v.signer
    elif v.signing_key is not None:
        text = f"{v.signing_key} (unknown key)"
    else:
        return "-"
    if v.signing_key is not None and v.signing_key != v.signer and v.signer is not None:
        text += f"\nsubkey {v.signing_key}"
    return escape(text if v.user_id is None else f"{text}\n{v.user_id}")


def _valid(v: Verdict) -> str:
    if not v.counted:
        return "[red]no[/]"
    return "[green]yes[/] (legacy format)" if v.format is PayloadFormat.LEGACY else "[green]yes[/]"


def _render(package: str, result: QuorumResult, directory: Path,
            ignored: tuple[str, ...]) -> None:
    table = Table(title=f"{escape(package)} {result.digest}", title_justify="left")
    table.add_column("signature", no_wrap=True)
    table.add_column("signer (primary key)", overflow="fold")
    table.add_column("valid", no_wrap=True)
    table.add_column("why not", overflow="fold")
    for v in result.verdicts:
        table.add_row(escape(v.name), _signer(v), _valid(v),
                      "" if v.reason is None else escape(f"{v.reason.value}: {v.detail}"))
    if result.verdicts:
        out.print(table)
    else:
        err.print(f"no signatures in {escape(str(directory))}", soft_wrap=True)
    if ignored:
        shown = ", ".join(ignored[:5]) + (f" and {len(ignored) - 5} more"
                                           if len(ignored) > 5 else "")
        err.print(f"[yellow]not counted:[/] {escape(shown)}: after a gap in the "
                  "numbering (readers such as skopeo stop at the first missing signature-N) "
                  f"or past the first {store.MAX_FILES} of them", soft_wrap=True)
    verdict = "[bold green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
    out.print(f"{verdict}: {len(result.valid_signers)} of {result.quorum} required "
              f"(distinct trusted signers; {count(len(result.trusted), 'trusted key')})")


COMMANDS: list[click.Command] = [sign, verify]
