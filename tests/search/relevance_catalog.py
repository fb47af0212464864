"""A fixed catalog of 66 real-ish titles (accents, casts, crews, synopses) for the search relevance tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from shared.catalog.ratings_map import maturity_for
from tests.support import catalog_factory as factory


@dataclass
class Entry:
    """One title of the relevance catalog."""

    title: str
    year: int
    rating: str
    genres: list[str]
    cast: list[str]
    crew: list[tuple[str, str]]
    synopsis: str
    language: str = "en"
    original: str | None = None
    kind: str = "movie"
    tags: list[str] = field(default_factory=list)
    popularity: float = 10.0


def _movie(title: str, year: int, rating: str, genres: str, cast: str, director: str, synopsis: str,
           **extra: Any) -> Entry:  # fmt: skip
    return Entry(
        title=title,
        year=year,
        rating=rating,
        genres=genres.split("/"),
        cast=[name.strip() for name in cast.split(",")] if cast else [],
        crew=[(name.strip(), "director") for name in director.split(",")],
        synopsis=synopsis,
        **extra,
    )


CATALOG: list[Entry] = [
    _movie(
        "The Godfather",
        1972,
        "R",
        "Crime/Drama",
        "Marlon Brando, Al Pacino, James Caan",
        "Francis Ford Coppola",
        "The aging patriarch of an organized crime dynasty transfers control of his "
        "clandestine empire to his reluctant youngest son.",
        tags=["mafia", "classic"],
        popularity=95,
    ),
    _movie(
        "The Godfather Part II",
        1974,
        "R",
        "Crime/Drama",
        "Al Pacino, Robert De Niro",
        "Francis Ford Coppola",
        "The early life and career of Vito Corleone in 1920s New York is portrayed "
        "while his son Michael expands and tightens his grip on the family crime syndicate.",
        tags=["mafia", "sequel"],
        popularity=80,
    ),
    _movie(
        "Amélie",
        2001,
        "R",
        "Comedy/Romance",
        "Audrey Tautou, Mathieu Kassovitz",
        "Jean-Pierre Jeunet",
        "A shy waitress in Montmartre decides to change the lives of those around her for the better while "
        "struggling with her own isolation.",
        language="fr",
        original="Le Fabuleux Destin d'Amélie Poulain",
        popularity=60,
    ),
    _movie(
        "Forrest Gump",
        1994,
        "PG-13",
        "Drama/Romance",
        "Tom Hanks, Robin Wright",
        "Robert Zemeckis",
        "A slow-witted but kind-hearted man from Alabama witnesses and unwittingly influences several "
        "defining historical events.",
        popularity=90,
    ),
    _movie(
        "Cast Away",
        2000,
        "PG-13",
        "Drama/Adventure",
        "Tom Hanks, Helen Hunt",
        "Robert Zemeckis",
        "A courier company executive must transform himself physically and emotionally to survive after a "
        "plane crash strands him on a deserted island.",
        tags=["survival"],
        popularity=50,
    ),
    _movie(
        "Saving Private Ryan",
        1998,
        "R",
        "War/Drama",
        "Tom Hanks, Matt Damon",
        "Steven Spielberg",
        "Following the Normandy landings, a group of soldiers goes behind enemy lines to retrieve a "
        "paratrooper whose brothers have been killed in action.",
        popularity=70,
    ),
    _movie(
        "Toy Story",
        1995,
        "G",
        "Animation/Family",
        "Tom Hanks, Tim Allen",
        "John Lasseter",
        "A cowboy doll is profoundly threatened and jealous when a new spaceman action figure supplants him "
        "as top toy in a boy's bedroom.",
        popularity=85,
    ),
    _movie(
        "Mad Max: Fury Road",
        2015,
        "R",
        "Action/Adventure",
        "Tom Hardy, Charlize Theron",
        "George Miller",
        "In a post-apocalyptic wasteland, a woman rebels against a tyrannical ruler in search for her "
        "homeland with the aid of a group of female prisoners and a drifter named Max.",
        popularity=75,
    ),
    _movie(
        "Inception",
        2010,
        "PG-13",
        "Science Fiction/Action",
        "Leonardo DiCaprio, Joseph Gordon-Levitt, Tom Hardy",
        "Christopher Nolan",
        "A thief who steals corporate secrets through dream-sharing technology is given the inverse task of "
        "planting an idea into the mind of a chief executive.",
        tags=["heist", "mind-bending"],
        popularity=92,
    ),
    _movie(
        "Interstellar",
        2014,
        "PG-13",
        "Science Fiction/Drama",
        "Matthew McConaughey, Anne Hathaway",
        "Christopher Nolan",
        "A team of explorers travel through a wormhole in space in an attempt to ensure humanity's survival.",
        tags=["space"],
        popularity=91,
    ),
    _movie(
        "Memento",
        2000,
        "R",
        "Thriller/Mystery",
        "Guy Pearce, Carrie-Anne Moss",
        "Christopher Nolan",
        "A man with short-term memory loss attempts to track down his wife's murderer using notes and "
        "tattoos.",
        popularity=55,
    ),
    _movie(
        "Spirited Away",
        2001,
        "PG",
        "Animation/Fantasy",
        "Rumi Hiiragi, Miyu Irino",
        "Hayao Miyazaki",
        "During her family's move to the suburbs, a sullen ten-year-old girl wanders into a world ruled by "
        "gods, witches and spirits, where humans are changed into beasts.",
        language="ja",
        original="Sen to Chihiro no Kamikakushi",
        popularity=78,
    ),
    _movie(
        "My Neighbor Totoro",
        1988,
        "G",
        "Animation/Family",
        "Hitoshi Takagi, Noriko Hidaka",
        "Hayao Miyazaki",
        "When two girls move to the country to be near their ailing mother, they have "
        "adventures with the wondrous forest spirits who live nearby.",
        language="ja",
        original="Tonari no Totoro",
        popularity=52,
    ),
    _movie(
        "Pan's Labyrinth",
        2006,
        "R",
        "Fantasy/Drama",
        "Ivana Baquero, Sergi López",
        "Guillermo del Toro",
        "In the falangist Spain of 1944, the bookish young stepdaughter of a sadistic army officer escapes "
        "into an eerie but captivating fantasy world.",
        language="es",
        original="El laberinto del fauno",
        popularity=58,
    ),
    _movie(
        "Volver",
        2006,
        "R",
        "Drama/Comedy",
        "Penélope Cruz, Carmen Maura",
        "Pedro Almodóvar",
        "After her death, a mother returns to her home town to fix the situations she could not resolve "
        "during her life.",
        language="es",
        popularity=35,
    ),
    _movie(
        "Roma",
        2018,
        "R",
        "Drama",
        "Yalitza Aparicio, Marina de Tavira",
        "Alfonso Cuarón",
        "A year in the life of a middle-class family's maid in Mexico City in the early 1970s.",
        language="es",
        popularity=40,
    ),
    _movie(
        "Y tu mamá también",
        2001,
        "R",
        "Drama",
        "Gael García Bernal, Diego Luna, Maribel Verdú",
        "Alfonso Cuarón",
        "In Mexico, two teenage boys and an attractive older woman embark on a road trip "
        "and learn about life, friendship and each other.",
        language="es",
        tags=["road trip"],
        popularity=30,
    ),
    _movie(
        "Léon: The Professional",
        1994,
        "R",
        "Crime/Thriller",
        "Jean Reno, Natalie Portman, Gary Oldman",
        "Luc Besson",
        "Twelve-year-old Mathilda is reluctantly taken in by Léon, a professional assassin, "
        "after her family is murdered.",
        language="fr",
        original="Léon",
        popularity=62,
    ),
    _movie(
        "La Haine",
        1995,
        "R",
        "Crime/Drama",
        "Vincent Cassel, Hubert Koundé",
        "Mathieu Kassovitz",
        "Twenty-four hours in the lives of three young men in the French suburbs the day after a violent "
        "riot.",
        language="fr",
        popularity=33,
    ),
    _movie(
        "The Intouchables",
        2011,
        "R",
        "Comedy/Drama",
        "François Cluzet, Omar Sy",
        "Olivier Nakache",
        "After he becomes a quadriplegic from a paragliding accident, an aristocrat hires a young man from "
        "the projects to be his caregiver.",
        language="fr",
        original="Intouchables",
        popularity=57,
    ),
    _movie(
        "Das Boot",
        1981,
        "R",
        "War/Thriller",
        "Jürgen Prochnow, Herbert Grönemeyer",
        "Wolfgang Petersen",
        "A German U-boat crew endures claustrophobic tension and depth charges while hunting convoys in the "
        "Atlantic during the Second World War.",
        language="de",
        tags=["submarine"],
        popularity=41,
    ),
    _movie(
        "Good Bye Lenin!",
        2003,
        "R",
        "Comedy/Drama",
        "Daniel Brühl, Katrin Saß",
        "Wolfgang Becker",
        "In 1990, to protect his fragile mother from a fatal shock after a long coma, a young man must keep "
        "her from learning that her beloved nation of East Germany has disappeared.",
        language="de",
        popularity=38,
    ),
    _movie(
        "The Lives of Others",
        2006,
        "R",
        "Drama/Thriller",
        "Ulrich Mühe, Sebastian Koch",
        "Florian Henckel von Donnersmarck",
        "In 1984 East Berlin, an agent of the secret police conducting "
        "surveillance on a writer and his lover finds himself increasingly absorbed by their lives.",
        language="de",
        original="Das Leben der Anderen",
        popularity=44,
    ),
    _movie(
        "Run Lola Run",
        1998,
        "R",
        "Thriller/Action",
        "Franka Potente, Moritz Bleibtreu",
        "Tom Tykwer",
        "After a botched money delivery, Lola has twenty minutes to come up with one hundred thousand "
        "Deutschmarks to save her boyfriend.",
        language="de",
        original="Lola rennt",
        popularity=36,
    ),
    _movie(
        "Parasite",
        2019,
        "R",
        "Thriller/Drama",
        "Song Kang-ho, Choi Woo-shik",
        "Bong Joon-ho",
        "Greed and class discrimination threaten the newly formed symbiotic relationship between the wealthy "
        "Park family and the destitute Kim clan.",
        language="ko",
        original="Gisaengchung",
        popularity=88,
    ),
    _movie(
        "Oldboy",
        2003,
        "R",
        "Thriller/Mystery",
        "Choi Min-sik, Yoo Ji-tae",
        "Park Chan-wook",
        "After being kidnapped and imprisoned for fifteen years, a man is released, only to find that he "
        "must find his captor in five days.",
        language="ko",
        tags=["revenge"],
        popularity=50,
    ),
    _movie(
        "Crouching Tiger, Hidden Dragon",
        2000,
        "PG-13",
        "Action/Fantasy",
        "Chow Yun-fat, Michelle Yeoh",
        "Ang Lee",
        "A young warrior steals a legendary sword from a famed swordsman and escapes into a world "
        "of romantic adventure with a mysterious bandit.",
        language="zh",
        tags=["martial arts"],
        popularity=47,
    ),
    _movie(
        "Cinema Paradiso",
        1988,
        "R",
        "Drama/Romance",
        "Philippe Noiret, Salvatore Cascio",
        "Giuseppe Tornatore",
        "A filmmaker recalls his childhood when falling in love with the pictures at "
        "the cinema of his home village, and his deep friendship with the cinema's projectionist.",
        language="it",
        original="Nuovo Cinema Paradiso",
        popularity=39,
    ),
    _movie(
        "Life Is Beautiful",
        1997,
        "PG-13",
        "Comedy/Drama",
        "Roberto Benigni, Nicoletta Braschi",
        "Roberto Benigni",
        "When an open-minded Jewish waiter and his son become victims of the Holocaust, "
        "he uses will, humor and imagination to protect his son from the dangers around their camp.",
        language="it",
        original="La vita è bella",
        popularity=61,
    ),
    _movie(
        "The Shawshank Redemption",
        1994,
        "R",
        "Drama",
        "Tim Robbins, Morgan Freeman",
        "Frank Darabont",
        "Over the course of several years, two convicts form a friendship, seeking consolation and, "
        "eventually, redemption through basic compassion.",
        tags=["prison"],
        popularity=97,
    ),
    _movie(
        "Pulp Fiction",
        1994,
        "R",
        "Crime",
        "John Travolta, Uma Thurman, Samuel L. Jackson",
        "Quentin Tarantino",
        "The lives of two mob hitmen, a boxer, a gangster and his wife intertwine in "
        "four tales of violence and redemption.",
        popularity=89,
    ),
    _movie(
        "Jurassic Park",
        1993,
        "PG-13",
        "Adventure/Science Fiction",
        "Sam Neill, Laura Dern, Jeff Goldblum",
        "Steven Spielberg",
        "A pragmatic paleontologist touring an almost complete theme park on an island "
        "is tasked with protecting two kids after a power failure causes the park's cloned dinosaurs to run "
        "loose.",
        tags=["dinosaurs"],
        popularity=86,
    ),
    _movie(
        "Jaws",
        1975,
        "PG",
        "Thriller/Adventure",
        "Roy Scheider, Robert Shaw",
        "Steven Spielberg",
        "When a killer shark unleashes chaos on a beach community, it is up to a local sheriff, a marine "
        "biologist and an old seafarer to hunt the beast down.",
        popularity=67,
    ),
    _movie(
        "E.T. the Extra-Terrestrial",
        1982,
        "PG",
        "Family/Science Fiction",
        "Henry Thomas, Drew Barrymore",
        "Steven Spielberg",
        "A troubled child summons the courage to help a friendly alien escape from Earth "
        "and return to his home planet.",
        popularity=64,
    ),
    _movie(
        "The Matrix",
        1999,
        "R",
        "Science Fiction/Action",
        "Keanu Reeves, Laurence Fishburne, Carrie-Anne Moss",
        "Lana Wachowski, Lilly Wachowski",
        "When a beautiful stranger leads computer hacker Neo to a "
        "forbidding underworld, he discovers the shocking truth: the life he knows is the elaborate "
        "deception of an evil cyber-intelligence.",
        popularity=93,
    ),
    _movie(
        "John Wick",
        2014,
        "R",
        "Action/Thriller",
        "Keanu Reeves, Michael Nyqvist",
        "Chad Stahelski",
        "An ex-hitman comes out of retirement to track down the gangsters that killed his dog and stole his "
        "car.",
        tags=["revenge"],
        popularity=79,
    ),
    _movie(
        "Alien",
        1979,
        "R",
        "Horror/Science Fiction",
        "Sigourney Weaver, Tom Skerritt",
        "Ridley Scott",
        "The crew of a commercial spacecraft encounters a deadly lifeform after investigating an unknown "
        "transmission.",
        tags=["space"],
        popularity=76,
    ),
    _movie(
        "Aliens",
        1986,
        "R",
        "Action/Science Fiction",
        "Sigourney Weaver, Michael Biehn",
        "James Cameron",
        "Fifty-seven years after surviving an attack aboard her space vessel, Ripley awakens and returns to "
        "the planet with a unit of colonial marines.",
        tags=["space", "sequel"],
        popularity=72,
    ),
    _movie(
        "Titanic",
        1997,
        "PG-13",
        "Romance/Drama",
        "Leonardo DiCaprio, Kate Winslet",
        "James Cameron",
        "A seventeen-year-old aristocrat falls in love with a kind but poor artist aboard the luxurious, "
        "ill-fated ocean liner.",
        popularity=87,
    ),
    _movie(
        "The Lord of the Rings: The Fellowship of the Ring",
        2001,
        "PG-13",
        "Fantasy/Adventure",
        "Elijah Wood, Ian McKellen, Viggo Mortensen",
        "Peter Jackson",
        "A meek hobbit from the Shire and "
        "eight companions set out on a journey to destroy the powerful One Ring and save Middle-earth from "
        "the Dark Lord Sauron.",
        popularity=94,
    ),
    _movie(
        "Harry Potter and the Philosopher's Stone",
        2001,
        "PG",
        "Fantasy/Family",
        "Daniel Radcliffe, Emma Watson, Rupert Grint",
        "Chris Columbus",
        "An orphaned boy enrolls in a "
        "school of wizardry, where he learns the truth about himself, his family and the terrible evil that "
        "haunts the magical world.",
        tags=["magic"],
        popularity=90,
    ),
    _movie(
        "The Dark Knight",
        2008,
        "PG-13",
        "Action/Crime",
        "Christian Bale, Heath Ledger, Aaron Eckhart",
        "Christopher Nolan",
        "When the menace known as the Joker wreaks havoc and chaos on the people of "
        "Gotham, Batman must accept one of the greatest tests of his ability to fight injustice.",
        tags=["superhero"],
        popularity=96,
    ),
    _movie(
        "Gladiator",
        2000,
        "R",
        "Action/Drama",
        "Russell Crowe, Joaquin Phoenix",
        "Ridley Scott",
        "A former Roman general sets out to exact vengeance against the corrupt emperor who murdered his "
        "family and sent him into slavery.",
        tags=["revenge"],
        popularity=84,
    ),
    _movie(
        "Up",
        2009,
        "PG",
        "Animation/Family",
        "Ed Asner, Jordan Nagai",
        "Pete Docter",
        "Seventy-eight-year-old Carl Fredricksen travels to South America in his house equipped with "
        "balloons, inadvertently taking a young stowaway.",
        popularity=73,
    ),
    _movie(
        "It",
        2017,
        "R",
        "Horror",
        "Bill Skarsgård, Jaeden Martell",
        "Andy Muschietti",
        "In the summer of 1989, a group of bullied kids band together to destroy a shape-shifting monster "
        "which disguises itself as a clown and preys on the children of Derry.",
        popularity=63,
    ),
    _movie(
        "Her",
        2013,
        "R",
        "Romance/Science Fiction",
        "Joaquin Phoenix, Scarlett Johansson",
        "Spike Jonze",
        "In a near future, a lonely writer develops an unlikely relationship with an operating system "
        "designed to meet his every need.",
        popularity=54,
    ),
    _movie(
        "Frozen",
        2013,
        "PG",
        "Animation/Family",
        "Kristen Bell, Idina Menzel",
        "Chris Buck, Jennifer Lee",
        "When the newly crowned Queen Elsa accidentally uses her power to turn things into ice to curse her "
        "home in infinite winter, her sister Anna teams up with a mountain man.",
        popularity=83,
    ),
    _movie(
        "Finding Nemo",
        2003,
        "G",
        "Animation/Family",
        "Albert Brooks, Ellen DeGeneres",
        "Andrew Stanton",
        "After his son is captured in the Great Barrier Reef and taken to Sydney, a timid clownfish sets out "
        "on a journey to bring him home.",
        tags=["ocean"],
        popularity=81,
    ),
    _movie(
        "Whiplash",
        2014,
        "R",
        "Drama/Music",
        "Miles Teller, J.K. Simmons",
        "Damien Chazelle",
        "A promising young drummer enrolls at a cut-throat music conservatory where his dreams of greatness "
        "are mentored by an instructor who will stop at nothing.",
        popularity=68,
    ),
    _movie(
        "La La Land",
        2016,
        "PG-13",
        "Romance/Music",
        "Ryan Gosling, Emma Stone",
        "Damien Chazelle",
        "While navigating their careers in Los Angeles, a pianist and an actress fall in love while "
        "attempting to reconcile their aspirations for the future.",
        popularity=77,
    ),
    _movie(
        "Schindler's List",
        1993,
        "R",
        "Drama/History",
        "Liam Neeson, Ben Kingsley, Ralph Fiennes",
        "Steven Spielberg",
        "In German-occupied Poland during World War II, industrialist Oskar Schindler "
        "gradually becomes concerned for his Jewish workforce after witnessing their persecution.",
        popularity=82,
    ),
    _movie(
        "City of God",
        2002,
        "R",
        "Crime/Drama",
        "Alexandre Rodrigues, Leandro Firmino",
        "Fernando Meirelles",
        "In the slums of Rio, two kids' paths diverge as one struggles to become a "
        "photographer and the other a kingpin.",
        language="pt",
        original="Cidade de Deus",
        popularity=59,
    ),
    _movie(
        "Amores perros",
        2000,
        "R",
        "Drama/Thriller",
        "Gael García Bernal, Emilio Echevarría",
        "Alejandro González Iñárritu",
        "A horrific car accident connects three stories, each involving "
        "characters dealing with loss, regret and life's harsh realities, all in the name of love.",
        language="es",
        popularity=37,
    ),
    _movie(
        "Dancer in the Dark",
        2000,
        "R",
        "Drama/Music",
        "Björk, Catherine Deneuve",
        "Lars von Trier",
        "An immigrant factory worker goes to America with her young son, expecting it to be like a Hollywood "
        "musical, while her eyesight is failing.",
        popularity=29,
    ),
    _movie(
        "Les Misérables",
        2012,
        "PG-13",
        "Drama/Music",
        "Hugh Jackman, Anne Hathaway, Russell Crowe",
        "Tom Hooper",
        "In nineteenth-century France, the ex-convict Jean Valjean, hunted for decades by the "
        "ruthless policeman Javert, agrees to care for a factory worker's daughter.",
        popularity=56,
    ),
    _movie(
        "Coco",
        2017,
        "PG",
        "Animation/Family",
        "Anthony Gonzalez, Gael García Bernal",
        "Lee Unkrich",
        "Aspiring musician Miguel, confronted with his family's ancestral ban on music, enters the Land of "
        "the Dead to find his great-great-grandfather, a legendary singer.",
        popularity=74,
    ),
    _movie(
        "Ponyo",
        2008,
        "G",
        "Animation/Family",
        "Yuria Nara, Hiroki Doi",
        "Hayao Miyazaki",
        "A five-year-old boy develops a relationship with a goldfish princess who longs to become a human "
        "after falling in love with him.",
        language="ja",
        original="Gake no Ue no Ponyo",
        popularity=42,
    ),
    _movie(
        "The Sixth Sense",
        1999,
        "PG-13",
        "Thriller/Mystery",
        "Bruce Willis, Haley Joel Osment",
        "M. Night Shyamalan",
        "A frightened, withdrawn boy who communicates with spirits seeks the help of a "
        "disheartened child psychologist.",
        popularity=66,
    ),
    _movie(
        "Crème Brûlée",
        2019,
        "PG",
        "Comedy/Romance",
        "Zoë Dubois, Noémie Lefèvre",
        "Hélène Garçon",
        "Two rival pastry chefs in Lyon fall for each other while competing for the title of best dessert in "
        "France.",
        language="fr",
        popularity=12,
    ),
    Entry(
        "Stranger Things",
        2016,
        "TV-14",
        ["Science Fiction", "Horror"],
        ["Millie Bobby Brown", "Winona Ryder"],
        [("Matt Duffer", "creator"), ("Ross Duffer", "creator")],
        "When a young boy vanishes, a small town "
        "uncovers a mystery involving secret experiments, terrifying supernatural forces and one strange "
        "little girl.",
        kind="series",
        popularity=98,
    ),
    Entry(
        "Breaking Bad",
        2008,
        "TV-MA",
        ["Crime", "Drama"],
        ["Bryan Cranston", "Aaron Paul"],
        [("Vince Gilligan", "creator")],
        "A chemistry teacher diagnosed with inoperable lung cancer turns to "
        "manufacturing and selling methamphetamine with a former student to secure his family's future.",
        kind="series",
        popularity=97,
    ),
    Entry(
        "Money Heist",
        2017,
        "TV-MA",
        ["Crime", "Thriller"],
        ["Úrsula Corberó", "Álvaro Morte"],
        [("Álex Pina", "creator")],
        "An unusual group of robbers attempt to carry out the most perfect robbery "
        "in Spanish history: stealing billions of euros from the Royal Mint of Spain.",
        language="es",
        original="La casa de papel",
        kind="series",
        tags=["heist"],
        popularity=85,
    ),
    Entry(
        "Dark",
        2017,
        "TV-MA",
        ["Science Fiction", "Thriller"],
        ["Louis Hofmann", "Lisa Vicari"],
        [("Baran bo Odar", "creator")],
        "A family saga with a supernatural twist, set in a German town where "
        "the disappearance of two young children exposes the relationships among four families.",
        language="de",
        kind="series",
        tags=["time travel"],
        popularity=71,
    ),
    Entry(
        "Squid Game",
        2021,
        "TV-MA",
        ["Thriller", "Drama"],
        ["Lee Jung-jae", "Park Hae-soo"],
        [("Hwang Dong-hyuk", "creator")],
        "Hundreds of cash-strapped players accept a strange invitation to "
        "compete in children's games for a tempting prize, but the stakes are deadly.",
        language="ko",
        original="Ojingeo Geim",
        kind="series",
        popularity=96,
    ),
    Entry(
        "Lupin",
        2021,
        "TV-14",
        ["Crime", "Thriller"],
        ["Omar Sy", "Ludivine Sagnier"],
        [("George Kay", "creator")],
        "Inspired by the adventures of Arsène Lupin, gentleman thief Assane Diop "
        "sets out to avenge his father for an injustice inflicted by a wealthy family.",
        language="fr",
        kind="series",
        popularity=69,
    ),
    Entry(
        "Bluey",
        2018,
        "TV-Y",
        ["Animation", "Family"],
        ["Dave McCormack", "Melanie Zanetti"],
        [("Joe Brumm", "creator")],
        "A lovable, inexhaustible six-year-old Blue Heeler dog turns everyday "
        "family life into extraordinary adventures with her little sister Bingo.",
        kind="series",
        popularity=65,
    ),
]


async def load(db: factory.Db) -> dict[str, uuid.UUID]:
    """Insert the catalog (people shared between titles, as in a real catalog); title -> id."""
    people: dict[str, uuid.UUID] = {}
    ids: dict[str, uuid.UUID] = {}
    for entry in CATALOG:
        system = "tv" if entry.rating.startswith("TV-") else "mpaa"
        title_id = await factory.title(
            db,
            entry.title,
            kind=entry.kind,
            genres=entry.genres,
            original_title=entry.original,
            synopsis_short=entry.synopsis,
            release_year=entry.year,
            original_language=entry.language,
            rating_system=system,
            rating=entry.rating,
            maturity_level=maturity_for(system, entry.rating),  # type: ignore[arg-type]
            tags=entry.tags,
            popularity=entry.popularity,
        )
        ids[entry.title] = title_id
        credits = [(name, "cast", None) for name in entry.cast] + [
            (name, "crew", job) for name, job in entry.crew
        ]
        for order, (name, role, job) in enumerate(credits):
            if name not in people:
                people[name] = await factory.person(db, name)
            await db.execute(
                """insert into public.catalog_credits (title_id, person_id, role, job, billing_order)
                   values (%s, %s, %s, %s, %s)""",
                (title_id, people[name], role, job, order),
            )
    return ids
