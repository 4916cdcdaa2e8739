/* The allow-list of `histoplan deid`: the TIFF tags a de-identified copy keeps as they are.
 *
 * A deny-list (blank DateTime, Artist, ...) misses whatever it did not foresee: XMP packets, IPTC
 * and Photoshop blocks, a scanner's private text tags, an EXIF directory. So the rule is the
 * other way round: a tag is kept only when it describes how the pixels are stored (geometry,
 * encoding, tiling, colour, resolution) and holds the type that tag is defined with, so it cannot
 * carry free text. Formats add the numeric private tags their reader needs (NDPI). Everything
 * else in a kept directory is removed, except the ImageDescription and Software values a
 * format is recognized by, which are scrubbed instead (io/deid.c). */
#include <stdio.h>

#include "io/deid_internal.h"

typedef enum { NUMERIC, RAW } value_kind;

static const struct {
    uint16_t tag;
    value_kind kind;
} common_tags[] = {
    {254, NUMERIC}, /* NewSubfileType: reduced-resolution level, page, mask */
    {255, NUMERIC}, /* SubfileType */
    {256, NUMERIC}, /* ImageWidth */
    {257, NUMERIC}, /* ImageLength */
    {258, NUMERIC}, /* BitsPerSample */
    {259, NUMERIC}, /* Compression */
    {262, NUMERIC}, /* PhotometricInterpretation */
    {263, NUMERIC}, /* Threshholding */
    {264, NUMERIC}, /* CellWidth */
    {265, NUMERIC}, /* CellLength */
    {266, NUMERIC}, /* FillOrder */
    {273, NUMERIC}, /* StripOffsets */
    {274, NUMERIC}, /* Orientation */
    {277, NUMERIC}, /* SamplesPerPixel */
    {278, NUMERIC}, /* RowsPerStrip */
    {279, NUMERIC}, /* StripByteCounts */
    {280, NUMERIC}, /* MinSampleValue */
    {281, NUMERIC}, /* MaxSampleValue */
    {282, NUMERIC}, /* XResolution */
    {283, NUMERIC}, /* YResolution */
    {284, NUMERIC}, /* PlanarConfiguration */
    {286, NUMERIC}, /* XPosition */
    {287, NUMERIC}, /* YPosition */
    {290, NUMERIC}, /* GrayResponseUnit */
    {291, NUMERIC}, /* GrayResponseCurve */
    {292, NUMERIC}, /* T4Options */
    {293, NUMERIC}, /* T6Options */
    {296, NUMERIC}, /* ResolutionUnit */
    {297, NUMERIC}, /* PageNumber */
    {301, NUMERIC}, /* TransferFunction */
    {317, NUMERIC}, /* Predictor */
    {318, NUMERIC}, /* WhitePoint */
    {319, NUMERIC}, /* PrimaryChromaticities */
    {320, NUMERIC}, /* ColorMap */
    {321, NUMERIC}, /* HalftoneHints */
    {322, NUMERIC}, /* TileWidth */
    {323, NUMERIC}, /* TileLength */
    {324, NUMERIC}, /* TileOffsets */
    {325, NUMERIC}, /* TileByteCounts */
    {332, NUMERIC}, /* InkSet */
    {334, NUMERIC}, /* NumberOfInks */
    {336, NUMERIC}, /* DotRange */
    {338, NUMERIC}, /* ExtraSamples */
    {339, NUMERIC}, /* SampleFormat */
    {340, NUMERIC}, /* SMinSampleValue */
    {341, NUMERIC}, /* SMaxSampleValue */
    {342, NUMERIC}, /* TransferRange */
    {347, RAW},     /* JPEGTables: quantization and Huffman tables the tiles need */
    {512, NUMERIC}, /* JPEGProc (old-style JPEG) */
    {513, NUMERIC}, /* JPEGInterchangeFormat */
    {514, NUMERIC}, /* JPEGInterchangeFormatLength */
    {515, NUMERIC}, /* JPEGRestartInterval */
    {517, NUMERIC}, /* JPEGLosslessPredictors */
    {518, NUMERIC}, /* JPEGPointTransforms */
    {519, NUMERIC}, /* JPEGQTables */
    {520, NUMERIC}, /* JPEGDCTables */
    {521, NUMERIC}, /* JPEGACTables */
    {529, NUMERIC}, /* YCbCrCoefficients */
    {530, NUMERIC}, /* YCbCrSubSampling */
    {531, NUMERIC}, /* YCbCrPositioning */
    {532, NUMERIC}, /* ReferenceBlackWhite */
    {32997, NUMERIC}, /* ImageDepth (Aperio writes it) */
    {32998, NUMERIC}, /* TileDepth */
    /* The scanner's colour response: a device description, kept so colours stay faithful. */
    {34675, RAW},   /* InterColorProfile (ICC) */
};

/* Hamamatsu NDPI: OpenSlide reads the source lens (level vs macro vs map), the offsets of the
 * slide centre, the focal plane and the JPEG restart positions. All are numbers. */
static const uint16_t ndpi_tags[] = {65420, 65421, 65422, 65423, 65424, 65426, 65432};

static int numeric_type(uint16_t type)
{
    switch (type) {
    case 3: case 4: case 5: case 8: case 9: case 10: case 11: case 12: case 13: case 16: case 17:
    case 18:
        return 1;
    default: return 0; /* BYTE, ASCII, SBYTE, UNDEFINED and unknown types can hold text */
    }
}

int deid_tag_allowed(deid_format fmt, const hp_tiff_entry *e)
{
    for (size_t i = 0; i < sizeof common_tags / sizeof *common_tags; i++)
        if (common_tags[i].tag == e->tag)
            return common_tags[i].kind == RAW ? (e->type == 7 || e->type == 1)
                                              : numeric_type(e->type);
    if (fmt == DEID_NDPI)
        for (size_t i = 0; i < sizeof ndpi_tags / sizeof *ndpi_tags; i++)
            if (ndpi_tags[i] == e->tag)
                return numeric_type(e->type);
    return 0;
}

int deid_tag_is_subifd(uint16_t tag)
{
    return tag == HP_TIFFTAG_SUB_IFDS || tag == HP_TIFFTAG_EXIF_IFD ||
           tag == HP_TIFFTAG_GPS_IFD || tag == HP_TIFFTAG_INTEROP_IFD;
}

const char *deid_tag_name(uint16_t tag, char *buf, size_t n)
{
    static const struct {
        uint16_t tag;
        const char *name;
    } names[] = {
        {269, "DocumentName"},   {270, "ImageDescription"}, {271, "Make"},
        {272, "Model"},          {285, "PageName"},         {305, "Software"},
        {306, "DateTime"},       {315, "Artist"},           {316, "HostComputer"},
        {330, "SubIFDs"},        {333, "InkNames"},         {337, "TargetPrinter"},
        {700, "XMP"},            {33432, "Copyright"},      {33723, "IPTC"},
        {34377, "Photoshop"},    {34665, "EXIF"},           {34853, "GPS"},
        {37724, "ImageSourceData"}, {40965, "Interoperability"}, {50838, "ImageJ metadata"},
        {50839, "ImageJ metadata"}, {65427, "NDPI SlideLabel"}, {65442, "NDPI ScannerSerialNumber"},
        {65449, "NDPI PropertyMap"}, {65468, "NDPI Barcode"},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].tag == tag)
            return names[i].name;
    snprintf(buf, n, "tag %u", (unsigned)tag);
    return buf;
}
