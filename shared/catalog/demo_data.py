"""The invented demo catalog: 36 movies and one series, every title, plot and person made up for the demo."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DemoMovie:
    """One invented movie; `categories` name catalog categories, `genres` name genres."""

    title: str
    year: int
    genres: tuple[str, ...]
    rating: str  # MPAA
    language: str
    country: str
    runtime: int
    synopsis: str
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        """The fixed slug the demo is keyed by."""
        return slugify(self.title)


@dataclass(frozen=True)
class DemoEpisode:
    """One episode of the demo series."""

    name: str
    synopsis: str
    runtime: int


@dataclass(frozen=True)
class DemoSeason:
    """One season of the demo series."""

    number: int
    name: str
    year: int
    synopsis: str
    episodes: tuple[DemoEpisode, ...] = field(default_factory=tuple)


def slugify(text: str) -> str:
    """A URL slug: accents folded to ASCII, words joined by hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = "".join(ch if ch.isalnum() else " " for ch in ascii_text.lower()).split()
    return "-".join(words)


GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "Horror",
    "Mystery",
    "Romance",
    "Science Fiction",
    "Thriller",
)
CATEGORIES = (
    "Award Winners",
    "Based on a Book",
    "Hidden Gems",
    "Feel-Good Favourites",
    "Critics' Picks",
    "Family Movie Night",
)

M = DemoMovie
MOVIES: tuple[DemoMovie, ...] = (
    M("The Salt Cartographer", 1987, ("Adventure", "Drama"), "PG", "en", "GB", 118,
      "A disgraced mapmaker sails to the edge of a shrinking inland sea to chart its coastline before it "
      "disappears for good.", ("sea", "maps", "voyage"), ("Award Winners", "Based on a Book")),
    M("Velvet Static", 1994, ("Thriller", "Mystery"), "R", "en", "US", 104,
      "A late-night radio host starts taking calls that describe crimes an hour before they happen.",
      ("radio", "night", "premonition"), ("Critics' Picks",)),
    M("Marmalade Summer", 1962, ("Comedy", "Romance"), "G", "en", "GB", 92,
      "Two rival jam makers forced to share a stall at the village fair discover they share more than "
      "a recipe.", ("village", "rivals"), ("Feel-Good Favourites",)),
    M("Orbit of Small Things", 2019, ("Science Fiction", "Drama"), "PG-13", "en", "US", 127,
      "An engineer on a failing space station grows a garden from the crew's leftover seeds while waiting "
      "for a rescue that may never come.", ("space", "survival", "garden"), ("Award Winners",)),
    M("Café Méridien", 2008, ("Romance", "Comedy"), "PG-13", "fr", "FR", 98,
      "In a Lyon café that never closes, a night waiter and an insomniac architect trade notes on paper "
      "napkins for a whole year.", ("café", "letters", "lyon"), ("Hidden Gems",)),
    M("The Lantern Keeper's Daughter", 1979, ("Family", "Fantasy"), "G", "en", "IE", 101,
      "When the lighthouse lamp goes dark, a girl rows across the bay to find the sea spirit who stole "
      "its flame.", ("lighthouse", "sea spirit"), ("Family Movie Night", "Based on a Book")),
    M("Iron Meadow", 1971, ("Drama",), "R", "de", "DE", 131,
      "A farmer returns from the front to find his fields sown with shrapnel and his estranged brother "
      "ploughing them anyway.", ("brothers", "farm", "postwar"), ("Critics' Picks", "Award Winners")),
    M("Neon Koi", 2015, ("Action", "Thriller"), "R", "ja", "JP", 112,
      "A courier at an Osaka fish market is hunted across the city after swallowing a microchip the whole "
      "underworld wants back.", ("chase", "osaka", "courier"), ()),
    M("The Quiet Alphabet", 2003, ("Drama",), "PG", "en", "CA", 109,
      "A deaf teenager and her grandfather invent a sign language of their own to finish the book he can "
      "no longer write.", ("family", "language"), ("Based on a Book", "Hidden Gems")),
    M("Paper Tigers of Lagos", 2021, ("Comedy", "Crime"), "PG-13", "en", "NG", 106,
      "Three out-of-work actors pose as debt collectors and accidentally take on the most feared "
      "moneylender in the city.", ("con artists", "lagos"), ("Feel-Good Favourites",)),
    M("Dunes of Ashkar", 1958, ("Adventure",), "PG", "en", "GB", 124,
      "A caravan cook must lead forty travellers home after their captain vanishes in a sandstorm.",
      ("desert", "caravan"), ("Award Winners",)),
    M("Hollow Creek Road", 1983, ("Horror",), "NC-17", "en", "US", 95,
      "A family moves into a farmhouse where every clock runs backwards after midnight.",
      ("haunted house", "clocks"), ()),
    M("The Ninth Violin", 1996, ("Drama", "Mystery"), "PG", "it", "IT", 115,
      "A luthier in Cremona discovers that the violin she is restoring was made to be played only once.",
      ("music", "cremona", "craft"), ("Critics' Picks",)),
    M("Sprocket and the Moon Parade", 2011, ("Animation", "Family"), "G", "en", "US", 84,
      "A small repair robot joins a parade of paper lanterns to the moon to bring back the light its "
      "town forgot to save.", ("robot", "lanterns"), ("Family Movie Night", "Feel-Good Favourites")),
    M("The Glasswater Protocol", 2017, ("Thriller", "Action"), "PG-13", "en", "US", 121,
      "A hydrologist uncovers a plot to poison a city's reservoir and has forty-eight hours to prove it.",
      ("conspiracy", "water"), ()),
    M("Tangerine Radio", 1974, ("Comedy", "Romance"), "PG", "es", "ES", 96,
      "A pirate radio station broadcast from a fishing boat becomes the voice of a coastal town's summer.",
      ("radio", "summer", "coast"), ("Hidden Gems", "Feel-Good Favourites")),
    M("Borrowed Thunder", 1989, ("Action", "Adventure"), "PG-13", "en", "AU", 110,
      "A stunt pilot grounded for life steals back her own biplane to rescue a flooded outback town.",
      ("aviation", "flood", "outback"), ()),
    M("Ghosts of the Amber Line", 2012, ("Mystery", "Horror"), "R", "sv", "SE", 102,
      "Passengers on the night train from Malmö to Kiruna start vanishing one station at a time.",
      ("train", "winter"), ("Critics' Picks",)),
    M("The Beekeeper's Almanac", 2023, ("Documentary",), "G", "en", "NZ", 88,
      "A year among the hives of one valley, following four beekeepers as they fight to keep their "
      "colonies alive.", ("bees", "nature", "seasons"), ("Award Winners", "Family Movie Night")),
    M("Kingdom of Loose Buttons", 2006, ("Animation", "Comedy"), "PG", "en", "GB", 90,
      "In a kingdom inside a sewing box, a button with one hole too many leads a revolt against the royal "
      "pincushion.", ("sewing box", "revolt"), ("Family Movie Night",)),
    M("Saffron Monsoon", 2014, ("Romance", "Drama"), "PG-13", "hi", "IN", 142,
      "A spice merchant's daughter and a rival trader's son are stranded together in Mumbai during the "
      "worst monsoon in a century.", ("monsoon", "mumbai", "rivals"), ("Feel-Good Favourites",)),
    M("Redline at Dawn", 1999, ("Action", "Crime"), "R", "en", "US", 108,
      "A getaway driver's last job goes wrong when the bank turns out to be a front for her own family.",
      ("heist", "cars"), ()),
    M("A Map of Falling Stars", 2010, ("Science Fiction", "Romance"), "PG-13", "ko", "KR", 118,
      "An astronomer falls for a woman who insists she has already lived the next ten years of his life.",
      ("time", "astronomy"), ("Hidden Gems",)),
    M("The Fourth Floor Tenant", 1966, ("Mystery", "Thriller"), "PG", "en", "GB", 97,
      "A retired typist is sure the flat above hers is empty, yet every night she hears someone typing.",
      ("apartment", "typewriter"), ("Critics' Picks",)),
    M("Wild Oats and Thunderstorms", 1992, ("Comedy", "Family"), "PG", "en", "US", 99,
      "Twelve cousins, one farmhouse and a grandmother's will that only pays out if they survive a summer "
      "together.", ("cousins", "summer", "farm"), ("Family Movie Night", "Feel-Good Favourites")),
    M("Ember and Ash", 2020, ("Fantasy", "Adventure"), "PG-13", "en", "GB", 133,
      "A blacksmith's apprentice forges a sword that remembers every battle it will ever fight.",
      ("sword", "prophecy"), ("Based on a Book",)),
    M("The Last Tram to Alfama", 2016, ("Drama", "Romance"), "PG-13", "pt", "PT", 105,
      "On the final night of the city's oldest tram route, a driver and her regular passengers say "
      "goodbye.", ("tram", "lisbon", "night"), ("Hidden Gems", "Award Winners")),
    M("Candlewick Nights", 1985, ("Horror", "Comedy"), "PG-13", "en", "US", 93,
      "Teenagers locked in a candle factory overnight learn why the wax figures in the basement look so "
      "familiar.", ("factory", "wax"), ()),
    M("Under the Copper Sky", 1977, ("Drama", "Adventure"), "PG", "es", "MX", 126,
      "When the company closes the only school in a mining town, its children organise a strike of their "
      "own.", ("mining", "children", "strike"), ("Award Winners",)),
    M("The Tidewater Heist", 2005, ("Crime", "Comedy"), "PG-13", "en", "US", 111,
      "A crew of retirees plans to rob the marina's floating casino on the night of the year's highest "
      "tide.", ("heist", "retirees", "marina"), ("Feel-Good Favourites",)),
    M("Polar Lullaby", 2018, ("Documentary", "Family"), "G", "en", "CA", 81,
      "A winter beside a polar bear mother and her two cubs on the frozen edge of a northern bay.",
      ("nature", "arctic", "bears"), ("Family Movie Night",)),
    M("Static Bloom", 2024, ("Science Fiction", "Thriller"), "R", "en", "US", 116,
      "In a city where dreams are recorded and sold, an archivist finds one that nobody has dreamt yet.",
      ("dreams", "dystopia"), ("Critics' Picks",)),
    M("Brass Buttons and Blue Ribbons", 1968, ("Family", "Comedy"), "G", "en", "US", 89,
      "A small-town marching band with eleven members enters the national championship by mistake.",
      ("marching band", "small town"), ("Family Movie Night", "Feel-Good Favourites")),
    M("The Cartwright Inheritance", 1995, ("Mystery", "Drama"), "PG-13", "en", "GB", 119,
      "Seven heirs gather at a crumbling estate where the will is hidden inside an unfinished game of "
      "chess.", ("inheritance", "chess", "estate"), ("Based on a Book",)),
    M("Heron's Crossing", 2001, ("Drama", "Family"), "PG", "en", "IE", 103,
      "A ferry captain facing the closure of his route takes the island's last schoolchildren on one final "
      "voyage.", ("ferry", "island"), ("Hidden Gems",)),
    M("Night Shift at the Orion Diner", 2022, ("Comedy", "Science Fiction"), "PG-13", "en", "US", 94,
      "Aliens, truckers and one exhausted waitress share a roadside diner on the night the stars go out.",
      ("diner", "aliens"), ("Feel-Good Favourites",)),
)  # fmt: skip

SERIES_TITLE = "Lanterns of Kessel Bay"
SERIES_SLUG = slugify(SERIES_TITLE)
SERIES_SYNOPSIS = (
    "In a fishing town on a windswept northern coast, a police sergeant who swore she would never come "
    "back reopens the case of a lighthouse keeper who vanished thirty years ago."
)
E = DemoEpisode
SEASONS: tuple[DemoSeason, ...] = (
    DemoSeason(1, "The Keeper", 2022, "Sergeant Isla Corran comes home and finds the town still keeping "
               "its oldest secret.", (
        E("Homecoming", "Isla comes back to Kessel Bay for her father's funeral and finds the lamp lit.", 52),
        E("Low Water", "A low spring tide uncovers a rowing boat that went missing with the keeper.", 48),
        E("The Ledger", "The harbourmaster's logbook is missing the one week that matters.", 50),
        E("Fog Signal", "A storm cuts the town off and someone sounds the old fog horn at midnight.", 55),
        E("Salt and Iron", "Isla finally gets the keeper's widow to talk, at a price.", 49),
        E("The Lamp Room", "The truth about the night of the disappearance comes to the surface.", 58),
    )),
    DemoSeason(2, "The Undertow", 2024, "A trawler returns empty and Kessel Bay's new harbour plan puts "
               "old families at war.", (
        E("Empty Nets", "The trawler Mairead drifts into harbour with no crew aboard.", 51),
        E("Strangers' Pier", "Developers arrive with a plan that would bury the old harbour.", 47),
        E("The Drowned Chapel", "Divers find a chapel bell where no chapel ever stood.", 53),
        E("Crosswind", "Isla's deputy is caught between his family and the investigation.", 50),
        E("Spring Tide", "A second boat goes missing on the highest tide of the year.", 54),
        E("The Undertow", "Isla confronts the families who have kept the bay's secrets for generations.", 61),
    )),
)  # fmt: skip

# Invented people: names chosen not to be those of well-known real people.
PEOPLE: tuple[str, ...] = (
    "Amara Okafor", "Théo Marchand", "Ingrid Vasstrand", "Kenji Arakawa", "Lucía Ferrer",
    "Declan Rourke", "Priya Ramanathan", "Marcus Pellinore", "Zoé Lemaire", "Tomasz Wierzba",
    "Hana Seo", "Rafael Quintero", "Eleanor Ashby", "Kwame Mensah", "Sofia Bellandi",
    "Jonas Ekström", "Mei-Lin Tsao", "Callum Fraser", "Adaeze Nwosu", "Gabriel Duarte",
    "Yuki Morimoto", "Beatriz Salgado", "Henrik Solvang", "Nadia Haddad", "Oliver Penhallow",
    "Rosalind Greaves", "Tariq Bashir", "Clémence Aubert", "Dmitri Zavarin", "Aisling Keane",
    "Mateo Iglesias", "Freya Lindqvist", "Samuel Adebayo", "Ji-ho Baek", "Valentina Russo",
    "Ewan McAllister", "Leila Farahani", "Hugo Lindgren", "Imogen Thistlewood", "Rohan Mehta",
    "Camille Deschamps", "Wendell Brooks", "Noor Al-Sayed", "Fabio Castellano", "Greta Holmberg",
    "Desmond Achterberg", "Isabela Moura", "Felix Brandt", "Marisol Vega", "Arjun Venkatesan",
    "Sakura Ishida", "Bram Oosterhuis", "Orla Dunleavy", "Thandiwe Dlamini", "Lorenzo Vitale",
    "Agnès Rivière", "Cyrus Kimathi", "Elif Demirci", "Magnus Thorsen", "Paloma Arriaga",
)  # fmt: skip
DIRECTORS = PEOPLE[:12]
WRITERS = PEOPLE[12:22]
ACTORS = PEOPLE[22:]

# Character names are drawn from these, per title and deterministically.
CHARACTER_FIRST = (
    "Ada", "Bertie", "Cass", "Dov", "Edie", "Finn", "Gus", "Hattie", "Ines", "Jory", "Kit", "Lena",
    "Milo", "Nell", "Otto", "Pia", "Quinn", "Rafe", "Sunny", "Tam", "Una", "Vic", "Wren", "Yara",
)  # fmt: skip
CHARACTER_LAST = (
    "Abernathy", "Bellweather", "Corran", "Dunmore", "Elsby", "Fairweather", "Garrow", "Holloway",
    "Ironside", "Jessop", "Kettering", "Larkin", "Marlowe", "Nettleford", "Oakes", "Pryor",
)  # fmt: skip
SERIES_CAST = (
    ("Aisling Keane", "Sgt. Isla Corran"),
    ("Ewan McAllister", "Rory Dunmore"),
    ("Rosalind Greaves", "Morag Elsby"),
    ("Callum Fraser", "Tam Corran"),
    ("Orla Dunleavy", "Fiona Garrow"),
    ("Magnus Thorsen", "Sven Halvorsen"),
)
SERIES_CREW = (("Declan Rourke", "creator"), ("Declan Rourke", "director"), ("Eleanor Ashby", "writer"))
