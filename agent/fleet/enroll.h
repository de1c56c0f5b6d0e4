/* enroll.h - `precursor-agent enroll`: make the device's key pair here and
 * register its public key with an enrollment token (what install.sh runs). */
#ifndef PRECURSOR_AGENT_ENROLL_H
#define PRECURSOR_AGENT_ENROLL_H

/* argv after "enroll".  Exit status: 0 enrolled (pending or active), 1
 * refused or failed, 2 usage. */
int enroll_main(int argc, char **argv);

#endif
