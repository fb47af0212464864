"""PlayReady licence challenges shaped as CDMs send them (SOAP AcquireLicense with a WRMHEADER), for tests."""

from __future__ import annotations

import base64
import os

from shared.licences.playready import kid_value

_ENVELOPE = """<?xml version="1.0" encoding="{encoding}"?>
<soap:Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
<soap:Body><AcquireLicense xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><challenge>
<Challenge xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols/messages">
<LA xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols" Id="SignedData" xml:space="preserve">
<Version>1</Version><ContentHeader>{header}</ContentHeader>
<CLIENTINFO><CLIENTVERSION>10.0.16384.10011</CLIENTVERSION></CLIENTINFO>
<LicenseNonce>{nonce}</LicenseNonce><ClientTime>1763712000</ClientTime>
<EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">
<EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
<CipherData><CipherValue>{cipher}</CipherValue></CipherData></EncryptedData></LA>
<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignatureValue>{signature}</SignatureValue></Signature>
</Challenge></challenge></AcquireLicense></soap:Body></soap:Envelope>"""


def wrmheader(*kids: bytes, version: str = "4.0") -> str:
    """A PlayReady header naming the KIDs the way header `version` does (4.0: <KID>; 4.1; 4.3: <KIDS>)."""
    if version == "4.0":
        data = "".join(f"<KID>{kid_value(kid)}</KID>" for kid in kids)
        data = f"<PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO>{data}"
    elif version == "4.1":
        data = "".join(
            f'<PROTECTINFO><KID ALGID="AESCTR" VALUE="{kid_value(kid)}"/></PROTECTINFO>' for kid in kids
        )
    else:
        listed = "".join(f'<KID ALGID="AESCTR" VALUE="{kid_value(kid)}"></KID>' for kid in kids)
        data = f"<PROTECTINFO><KIDS>{listed}</KIDS></PROTECTINFO>"
    return (
        '<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" '
        f'version="{version}.0.0"><DATA>{data}<LA_URL>https://licence.example/pr</LA_URL></DATA></WRMHEADER>'
    )


def challenge(*kids: bytes, version: str = "4.0", encoding: str = "utf-8") -> bytes:
    """A licence acquisition challenge for these KIDs, encoded as declared."""
    text = _ENVELOPE.format(
        encoding=encoding,
        header=wrmheader(*kids, version=version),
        nonce=base64.b64encode(os.urandom(16)).decode(),
        cipher=base64.b64encode(os.urandom(1024)).decode(),
        signature=base64.b64encode(os.urandom(64)).decode(),
    )
    return text.encode(encoding)


def eme_message(*kids: bytes) -> bytes:
    """What a browser's PlayReady CDM hands to EME: the challenge base64 inside UTF-16 XML."""
    inner = base64.b64encode(challenge(*kids)).decode()
    return (
        '<PlayReadyKeyMessage type="LicenseAcquisition"><LicenseAcquisition Version="1">'
        f'<Challenge encoding="base64encoded">{inner}</Challenge><HttpHeaders><HttpHeader><name>Content-Type'
        "</name><value>text/xml; charset=utf-8</value></HttpHeader></HttpHeaders></LicenseAcquisition>"
        "</PlayReadyKeyMessage>"
    ).encode("utf-16")
