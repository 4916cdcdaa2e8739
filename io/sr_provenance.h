/* The two flags a super-resolved file from `histoplan upscale` (pipeline/upscale.c) carries in its
 * Aperio description, exactly as written: de-identification (io/deid_aperio.c) keeps them only in
 * this form, and readers tell a derived image by them. */
#ifndef HP_IO_SR_PROVENANCE_H
#define HP_IO_SR_PROVENANCE_H

#define HP_SR_FLAG_SUPER_RESOLVED "yes: not the scanned image"
#define HP_SR_FLAG_GENERATIVE "yes: the model may invent texture"

#endif
