// The release version; a unit test keeps it equal to package.json's.
export const VERSION = '0.1.0';

// What follows "SSH-2.0-" in the identification line. OpenSSH shows it as
// "remote software version lukko_0.1.0".
export const SSH_IDENT = `lukko_${VERSION}`;
