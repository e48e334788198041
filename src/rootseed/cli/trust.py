"""``rootseed sign`` and ``rootseed verify``: container signatures and the quorum."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from rootseed.cli.common import common_options
from rootseed.cli.trust_options import quorum_options, store_options
from rootseed.console import emit_json, err, out
from rootseed.errors import RootseedError
from rootseed.oci.verified import open_image
from rootseed.settings import Settings
from rootseed.tree import Tree
from rootseed.trust import gpg, store
from rootseed.trust import payload as payload_mod
from rootseed.trust.facts import CryptoStatus
from rootseed.trust.quorum import QuorumResult, Verdict
from rootseed.trust.verify import ImageVerifier


@dataclass(frozen=True)
class _PackageInfo:
    namespace: str
    version: str


def _package_info(settings: Settings, name: str) -> _PackageInfo:
    """The tree's namespace and the version of the package that makes image ``name``."""
    tree = Tree.load(settings.tree)
    package = tree.get(tree.images.get(name, name))
    return _PackageInfo(tree.namespace, package.version)


def _manifest_digest(image_dir: Path, *, check_blobs: bool = False) -> str:
    """The local image's manifest digest; with ``check_blobs``, also verify its blobs."""
    if not (image_dir / "index.json").is_file():
        raise RootseedError(f"no image at {image_dir} (index.json is missing)",
                            hint="build the package first (rootseed build), pass --out, or "
                                 "give --digest / --digests-file")
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
                raise RootseedError(f"{path}:{number}: {e.message}", hint=e.hint) from e
    raise RootseedError(f"{path}: no line for package {name}",
                        hint="lines are '<manifest sha256> <stage>-<name>'")


@click.command("sign")
@click.argument("package")
@click.option("--key", required=True, help="Signing key fingerprint (append '!' to force "
              "this exact subkey; tools such as skopeo only accept the key they trust).")
@click.option("--gnupghome", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="GnuPG home holding the secret key (default: GnuPG's own default).")
@store_options
@click.option("--tag", default=None, help="Tag in the docker reference (default: the "
              "package version).")
@common_options
def sign(package: str, key: str, gnupghome: Path | None, signatures: Path,
         registry: str | None, tag: str | None, settings: Settings) -> None:
    """Sign the manifest digest of the locally built image of PACKAGE.

    Writes an OpenPGP-signed "atomic container signature" (the containers/image and
    StageX format) as the next signature-N; a key that already signed this digest is
    refused.
    """
    digest = _manifest_digest(settings.out / package, check_blobs=True)
    if registry is None or tag is None:
        info = _package_info(settings, package)
        registry = registry if registry is not None else info.namespace
        tag = tag if tag is not None else info.version
    reference = f"{registry}/{package}:{tag}"
    document = payload_mod.build(reference, digest)
    directory = store.signature_dir(signatures, registry, package, digest)

    signature = gpg.sign(document, key, gnupghome=gnupghome)
    public = gpg.export_public_key(key, gnupghome=gnupghome)
    with gpg.Keyring(public, source=f"key {key}") as keyring:
        mine = keyring.check(signature, name="new signature")
        if mine.status is not CryptoStatus.GOOD or mine.payload != document:
            raise RootseedError(f"the new signature by {key} does not verify: {mine.detail}",
                                hint="check that the key is neither expired nor revoked")
        for existing in store.list_signatures(directory):
            facts = keyring.check_file(existing)
            if (facts.status is CryptoStatus.GOOD
                    and facts.primary_fingerprint == mine.primary_fingerprint):
                raise RootseedError(
                    f"key {mine.primary_fingerprint} already signed {package} {digest} "
                    f"({existing})", hint="each key counts once; nothing was added")
    path = store.add_signature(directory, signature)
    if settings.json:
        emit_json({"package": package, "reference": reference, "digest": digest,
                   "signer": mine.primary_fingerprint,
                   "signing_key": mine.signing_fingerprint, "signature": str(path)})
    else:
        subkey = ("" if mine.signing_fingerprint == mine.primary_fingerprint
                  else f" (subkey {mine.signing_fingerprint})")
        out.print(f"signed {escape(reference)} {digest}\n  by {mine.primary_fingerprint}"
                  f"{subkey}\n  -> {escape(str(path))}", soft_wrap=True)


@click.command("verify")
@click.argument("package")
@quorum_options(keyring_required=True)
@click.option("--tag", default=None,
              help="Require this tag in the signed reference (default: any tag).")
@click.option("--digest", default=None, help="Verify this manifest digest (sha256:…) "
              "instead of the local image's.")
@click.option("--digests-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Take the digest from a digests/<stage>.txt file instead of the local image.")
@common_options
def verify(package: str, keyring_path: Path, quorum: int, signatures: Path,
           registry: str | None, tag: str | None, digest: str | None,
           digests_file: Path | None, settings: Settings) -> None:
    """Check that at least --quorum distinct trusted keys signed PACKAGE's digest.

    Every signature-N is checked cryptographically against --keyring; subkeys count for
    their primary key, each key counts once, and the signed digest (and reference) must
    match. Exit status 0 only if the quorum is met.
    """
    if digest is not None and digests_file is not None:
        raise click.UsageError("give either --digest or --digests-file, not both")
    if digest is not None:
        digest = payload_mod.check_manifest_digest(digest)
    elif digests_file is not None:
        digest = _digest_from_file(digests_file, package)
    else:
        digest = _manifest_digest(settings.out / package)
    if registry is None:
        registry = _package_info(settings, package).namespace
    with ImageVerifier(keyring_path, signatures=signatures, registry=registry,
                       quorum=quorum) as verifier:
        directory = verifier.directory(package, digest)
        result = verifier.check(package, digest, tag=tag)

    if settings.json:
        emit_json({"package": package, **result.to_json()})
    else:
        _render(package, result, directory)
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


def _render(package: str, result: QuorumResult, directory: Path) -> None:
    table = Table(title=f"{escape(package)} {result.digest}", title_justify="left")
    table.add_column("signature", no_wrap=True)
    table.add_column("signer (primary key)", overflow="fold")
    table.add_column("valid", no_wrap=True)
    table.add_column("why not", overflow="fold")
    for v in result.verdicts:
        table.add_row(escape(v.name), _signer(v),
                      "[green]yes[/]" if v.counted else "[red]no[/]",
                      "" if v.reason is None else escape(f"{v.reason.value}: {v.detail}"))
    if result.verdicts:
        out.print(table)
    else:
        err.print(f"no signatures in {escape(str(directory))}", soft_wrap=True)
    verdict = "[bold green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
    out.print(f"{verdict}: {len(result.valid_signers)} of {result.quorum} required "
              f"(distinct trusted signers; {len(result.trusted)} trusted keys)")


COMMANDS: list[click.Command] = [sign, verify]
