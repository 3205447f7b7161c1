"""The colour palette of Pascal VOC's class masks, for reading, writing and drawing masks.

VOC stores a mask as a palette PNG: each pixel is a class id and the palette gives id ``i`` the
colour built from the bits of ``i`` (bit 0 to red, bit 1 to green, bit 2 to blue, three bits at
a time, from the most significant bit of each channel down). So 0 is black, 1 (aeroplane) dark
red (128, 0, 0), 15 (person) (192, 128, 128) and 255, the ignored border, (224, 224, 192).
"""


def voc_colour(index: int) -> tuple[int, int, int]:
    """The (r, g, b) colour VOC gives class id ``index`` (0..255)."""
    rgb = [0, 0, 0]
    for bit in range(8):  # 8 rounds of 3 bits cover ids 0..2**24-1; VOC needs 0..255
        for channel in range(3):
            rgb[channel] |= ((index >> channel) & 1) << (7 - bit)
        index >>= 3
    return rgb[0], rgb[1], rgb[2]


def voc_palette(n: int = 256) -> list[int]:
    """The flat ``[r0, g0, b0, r1, ...]`` list of ``3 * n`` ints that ``Image.putpalette`` takes;
    with the default ``n`` it is the full 768-entry palette of a VOC mask PNG."""
    return [value for index in range(n) for value in voc_colour(index)]
